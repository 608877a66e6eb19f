import keras

from keraslm.layers._utils import clone_initializer
from keraslm.layers._utils import get_keras_mask
from keraslm.layers._utils import merge_padding_and_attention_mask
from keraslm.layers._utils import validate_choice
from keraslm.layers._utils import validate_positive_int
from keraslm.layers._utils import validate_rate
from keraslm.layers.feed_forward import FeedForward
from keraslm.layers.multi_head_attention import MultiHeadAttention


@keras.saving.register_keras_serializable(package="keraslm")
class TransformerEncoderBlock(keras.layers.Layer):
    """Transformer encoder block: self-attention and a feed-forward network.

    Each sublayer is wrapped in dropout and a residual connection. With
    `normalization="post"` (the original Transformer and BERT) layer
    normalization follows each residual sum: `x = norm(x + sublayer(x))`;
    with `"pre"` (GPT-2) it comes first: `x = x + sublayer(norm(x))`, and
    the stack of blocks needs a final normalization. Layer normalization
    and softmax are computed in float32 under mixed precision.

    Padding: pass `padding_mask` (`(batch, length)`, `True` for real
    tokens) or feed inputs that carry a Keras mask (e.g. from
    `keraslm.layers.TokenAndPositionEmbedding(mask_zero=True)`); padded keys
    are never attended to, so appending padding leaves the outputs of real
    tokens unchanged.

    Args:
        num_heads: int. The number of attention heads; must divide the
            hidden size.
        intermediate_dim: int. The hidden size of the feed-forward network.
        dropout: float. Dropout on the attention probabilities and on each
            sublayer's output. Defaults to `0.0`.
        attention_dropout: float or None. Dropout on the attention
            probabilities alone, when it should differ from `dropout`
            (`0.0` keeps sublayer dropout but skips the
            `(batch, heads, length, length)` mask, the costly one on CPU,
            and lets the fused attention kernel run in training). Defaults
            to `None`, which is `dropout`.
        activation: string. The feed-forward activation: `"relu"`,
            `"gelu"`, `"swiglu"` (see `keraslm.layers.FeedForward`).
            Defaults to `"relu"`.
        normalization: string. `"post"` or `"pre"`. Defaults to `"post"`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        fused_qkv: bool. Whether self-attention uses one fused QKV
            projection. Defaults to `True`.
        use_rotary_embedding: bool. Whether self-attention applies rotary
            position embeddings to queries and keys. Defaults to `False`.
        kernel_initializer: string or `keras.initializers` initializer.
            Defaults to `"glorot_uniform"`.
        bias_initializer: string or `keras.initializers` initializer.
            Defaults to `"zeros"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: float tensor `(batch, length, hidden_dim)`.
        padding_mask: bool/int tensor `(batch, length)` or `None`.
        attention_mask: bool/int tensor `(batch, length, length)` or `None`.
        use_causal_mask: bool. Defaults to `False`.
        return_attention_scores: bool. Whether to also return the attention
            probabilities `(batch, num_heads, length, length)`.
        training: bool.

    Example:

    ```python
    import numpy as np
    import keraslm

    block = keraslm.layers.TransformerEncoderBlock(
        num_heads=4, intermediate_dim=64
    )
    x = np.random.uniform(size=(2, 10, 32)).astype("float32")
    y = block(x, padding_mask=np.ones((2, 10), bool))  # (2, 10, 32)
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
     - [Xiong et al., 2020](https://arxiv.org/abs/2002.04745) (pre-LN)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        attention_dropout=None,
        activation="relu",
        normalization="post",
        layer_norm_epsilon=1e-5,
        fused_qkv=True,
        use_rotary_embedding=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive_int("num_heads", num_heads)
        validate_positive_int("intermediate_dim", intermediate_dim)
        validate_rate("dropout", dropout)
        if attention_dropout is not None:
            validate_rate("attention_dropout", attention_dropout)
        validate_choice("normalization", normalization, ("post", "pre"))
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.normalization = normalization
        self.layer_norm_epsilon = layer_norm_epsilon
        self.fused_qkv = fused_qkv
        self.use_rotary_embedding = use_rotary_embedding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _check_hidden_dim(self, hidden_dim):
        if hidden_dim % self.num_heads:
            raise ValueError(
                "`hidden_dim` must be divisible by `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={self.num_heads}"
            )

    def _attention(self, name):
        return MultiHeadAttention(
            num_heads=self.num_heads,
            dropout=(
                self.dropout
                if self.attention_dropout is None
                else self.attention_dropout
            ),
            fused_qkv=self.fused_qkv,
            use_rotary_embedding=(
                self.use_rotary_embedding and name == "self_attention"
            ),
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name, shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(shape)
        return layer

    def _dropout(self, name):
        return keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name=name
        )

    def _feedforward(self, shape):
        layer = FeedForward(
            intermediate_dim=self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="feedforward",
        )
        layer.build(shape)
        return layer

    def build(self, inputs_shape):
        self._check_hidden_dim(inputs_shape[-1])
        self.self_attention = self._attention("self_attention")
        self.self_attention.build(inputs_shape)
        self.self_attention_layer_norm = self._layer_norm(
            "self_attention_layer_norm", inputs_shape
        )
        self.self_attention_dropout = self._dropout("self_attention_dropout")
        self.feedforward = self._feedforward(inputs_shape)
        self.feedforward_layer_norm = self._layer_norm(
            "feedforward_layer_norm", inputs_shape
        )
        self.feedforward_dropout = self._dropout("feedforward_dropout")

    def _residual(self, x, sublayer, layer_norm, dropout, training):
        """Applies `sublayer` with dropout, residual and pre/post norm."""
        residual = x
        if self.normalization == "pre":
            x = layer_norm(x)
        x, *extra = sublayer(x)
        x = dropout(x, training=training) + residual
        if self.normalization == "post":
            x = layer_norm(x)
        return x, extra

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        if padding_mask is None:
            padding_mask = get_keras_mask(inputs)
        mask = merge_padding_and_attention_mask(padding_mask, attention_mask)

        def attend(x):
            outputs = self.self_attention(
                x,
                attention_mask=mask,
                use_causal_mask=use_causal_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            return outputs if return_attention_scores else (outputs,)

        x, extra = self._residual(
            inputs,
            attend,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            training,
        )
        x, _ = self._residual(
            x,
            lambda x: (self.feedforward(x, training=training),),
            self.feedforward_layer_norm,
            self.feedforward_dropout,
            training,
        )
        if return_attention_scores:
            return x, extra[0]
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
            "normalization": self.normalization,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "fused_qkv": self.fused_qkv,
            "use_rotary_embedding": self.use_rotary_embedding,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
        }

