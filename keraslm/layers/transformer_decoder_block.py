import keras

from keraslm.layers._utils import get_keras_mask
from keraslm.layers._utils import merge_padding_and_attention_mask
from keraslm.layers.transformer_encoder_block import TransformerEncoderBlock


@keras.saving.register_keras_serializable(package="keraslm")
class TransformerDecoderBlock(TransformerEncoderBlock):
    """Transformer decoder block: causal self-attention, optional
    cross-attention, and a feed-forward network.

    Called as `layer(decoder_sequence)` it is a GPT-style block; called as
    `layer(decoder_sequence, encoder_sequence)` it also attends to the
    encoder outputs (the original encoder-decoder Transformer). Which of the
    two is fixed by the first call. Each sublayer is wrapped in dropout, a
    residual connection and layer normalization, after the sum
    (`normalization="post"`, the original paper) or before the sublayer
    (`"pre"`, GPT-2). Self-attention is causal unless `use_causal_mask=False`.

    Cached decoding: pass `self_attention_cache`, a tensor
    `(batch, 2, max_length, num_heads, head_dim)` (zeros to start), and
    `self_attention_cache_update_index`, the position of the first token of
    `decoder_sequence`; the layer returns `(outputs, self_attention_cache)`
    and, token by token, gives the same outputs as one call on the whole
    sequence. With cross-attention, `cross_attention_cache=
    layer.compute_cross_attention_cache(encoder_sequence)` avoids projecting
    the encoder outputs again at every step (it is read, never updated). In
    cached mode, implicit Keras masks are ignored and a
    `decoder_padding_mask`, if any, must cover `max_length`.

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
        activation: string. `"relu"`, `"gelu"` or `"swiglu"`.
            Defaults to `"relu"`.
        normalization: string. `"post"` or `"pre"`. Defaults to `"post"`.
        layer_norm_epsilon: float. Defaults to `1e-5`.
        fused_qkv: bool. Whether self-attention uses one fused QKV
            projection. Defaults to `True`.
        use_rotary_embedding: bool. Whether self-attention applies rotary
            position embeddings. Defaults to `False`.
        kernel_initializer: string or `keras.initializers` initializer.
            Defaults to `"glorot_uniform"`.
        bias_initializer: string or `keras.initializers` initializer.
            Defaults to `"zeros"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        decoder_sequence: float tensor `(batch, length, hidden_dim)`.
        encoder_sequence: float tensor `(batch, encoder_length, hidden)` or
            `None`.
        decoder_padding_mask: `(batch, length)` (`(batch, max_length)` when
            cached) or `None`; defaults to the Keras mask of
            `decoder_sequence`.
        decoder_attention_mask: `(batch, length, length)` or `None`.
        encoder_padding_mask: `(batch, encoder_length)` or `None`; defaults
            to the Keras mask of `encoder_sequence`.
        encoder_attention_mask: `(batch, length, encoder_length)` or `None`.
        self_attention_cache: float tensor or `None`.
        self_attention_cache_update_index: int or int tensor or `None`.
        cross_attention_cache: float tensor
            `(batch, 2, encoder_length, num_heads, head_dim)` or `None`.
        use_causal_mask: bool. Defaults to `True`.
        return_attention_scores: bool. Whether to also return the
            self-attention probabilities `(batch, num_heads, length,
            key_length)`. Defaults to `False`.
        training: bool.

    Returns:
        `outputs`, or `(outputs, self_attention_cache)` when a
        `self_attention_cache` is given; with `return_attention_scores=True`
        the self-attention probabilities come second:
        `(outputs, attention_scores)` or
        `(outputs, attention_scores, self_attention_cache)`.

    Example:

    ```python
    import numpy as np
    import keraslm

    block = keraslm.layers.TransformerDecoderBlock(
        num_heads=4, intermediate_dim=64
    )
    x = np.random.uniform(size=(2, 6, 32)).astype("float32")
    y = block(x)  # (2, 6, 32), causal

    cache = np.zeros((2, 2, 6, 4, 8), "float32")
    for index in range(6):
        y_t, cache = block(
            x[:, index : index + 1],
            self_attention_cache=cache,
            self_attention_cache_update_index=index,
        )  # y_t == y[:, index : index + 1]
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
     - [Radford et al., 2019](https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf)
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        super().build(decoder_sequence_shape)
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            self.cross_attention = self._attention("cross_attention")
            self.cross_attention.build(
                decoder_sequence_shape, encoder_sequence_shape
            )
            self.cross_attention_layer_norm = self._layer_norm(
                "cross_attention_layer_norm", decoder_sequence_shape
            )
            self.cross_attention_dropout = self._dropout(
                "cross_attention_dropout"
            )

    def compute_cross_attention_cache(self, encoder_sequence):
        """Projects `encoder_sequence` to the keys/values of cross-attention.

        Returns a `(batch, 2, encoder_length, num_heads, head_dim)` tensor to
        pass as `cross_attention_cache` on every decoding step.
        """
        if self.cross_attention is None:
            raise ValueError(
                "This `TransformerDecoderBlock` has no cross-attention: it was "
                "built by a call without `encoder_sequence`."
            )
        return self.cross_attention.compute_key_value_cache(encoder_sequence)

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        decoder_attention_mask=None,
        encoder_padding_mask=None,
        encoder_attention_mask=None,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        use_causal_mask=True,
        return_attention_scores=False,
        training=None,
    ):
        has_cross_attention = self.cross_attention is not None
        if has_cross_attention != (encoder_sequence is not None):
            raise ValueError(
                "`TransformerDecoderBlock` must be called the same way every "
                "time: `layer(decoder_sequence)` (no cross-attention) or "
                "`layer(decoder_sequence, encoder_sequence)`. This layer was "
                f"built {'with' if has_cross_attention else 'without'} "
                "cross-attention. Received: encoder_sequence="
                f"{'None' if encoder_sequence is None else 'a tensor'}"
            )
        cached = self_attention_cache is not None
        if decoder_padding_mask is None and not cached:
            decoder_padding_mask = get_keras_mask(decoder_sequence)
        self_mask = merge_padding_and_attention_mask(
            decoder_padding_mask, decoder_attention_mask
        )

        def self_attend(x):
            outputs = self.self_attention(
                x,
                attention_mask=self_mask,
                use_causal_mask=use_causal_mask,
                cache=self_attention_cache,
                cache_update_index=self_attention_cache_update_index,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            return outputs if cached or return_attention_scores else (outputs,)

        x, extra = self._residual(
            decoder_sequence,
            self_attend,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            training,
        )
        if has_cross_attention:
            if encoder_padding_mask is None:
                encoder_padding_mask = get_keras_mask(encoder_sequence)
            cross_mask = merge_padding_and_attention_mask(
                encoder_padding_mask, encoder_attention_mask
            )

            def cross_attend(x):
                outputs = self.cross_attention(
                    x,
                    encoder_sequence,
                    attention_mask=cross_mask,
                    cache=cross_attention_cache,
                    training=training,
                )
                if cross_attention_cache is not None:
                    return outputs[:1]
                return (outputs,)

            x, _ = self._residual(
                x,
                cross_attend,
                self.cross_attention_layer_norm,
                self.cross_attention_dropout,
                training,
            )
        x, _ = self._residual(
            x,
            lambda x: (self.feedforward(x, training=training),),
            self.feedforward_layer_norm,
            self.feedforward_dropout,
            training,
        )
        if cached or return_attention_scores:
            return (x, *extra)
        return x
