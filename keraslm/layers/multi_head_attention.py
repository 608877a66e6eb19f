import math

import keras
from keras import ops

from keraslm.layers._utils import clone_initializer
from keraslm.layers._utils import dense_like_initializer
from keraslm.layers._utils import get_keras_mask
from keraslm.layers._utils import validate_positive_int
from keraslm.layers._utils import validate_rate
from keraslm.layers.rotary_embedding import RotaryEmbedding

# Masked scores: finite so that a fully masked row gives a uniform
# distribution (as `keras.layers.Softmax`) rather than NaN. Scores are float32.
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="keraslm")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention with a key/value cache.

    Computes `softmax(Q K^T / sqrt(head_dim)) V` for `num_heads` heads and
    projects the concatenated heads back to `output_dim`. Called as
    `layer(query)` it is self-attention and, with `fused_qkv=True`, projects
    queries, keys and values with one kernel `(hidden_dim, 3, num_heads,
    head_dim)`; called as `layer(query, value)` it is cross-attention with
    separate kernels. Which of the two a layer is gets fixed by its first
    call. The softmax is computed in float32 under mixed precision. On JAX
    and PyTorch, when the probabilities are not needed (not returned, no
    attention dropout in training), the layer calls
    `keras.ops.dot_product_attention`, which is cuDNN flash attention on a
    recent NVIDIA GPU in bfloat16/float16.

    Masks: `attention_mask` (`(batch, query_length, key_length)`, or a
    key padding mask `(batch, key_length)`; `True`/`1` = attend),
    `use_causal_mask=True` (query `i` sees keys `<= i`) and the implicit
    Keras mask of the keys (e.g. from
    `TokenEmbedding(mask_zero=True)`) are combined.

    Incremental decoding: pass `cache`, a tensor
    `(batch, 2, max_length, num_heads, head_dim)` holding keys (`[:, 0]`)
    and values (`[:, 1]`), and `cache_update_index`, the position of the
    first query token. The new keys/values are written there, queries attend
    to cache positions `< cache_update_index + query_length` (and causally
    with `use_causal_mask=True`), and the layer also returns the updated
    cache. For cross-attention, a cache from
    `compute_key_value_cache(value)` with `cache_update_index=None` is used
    as it is. Start from `ops.zeros(...)` for self-attention.

    Args:
        num_heads: int. The number of attention heads.
        key_dim: int. The size of each head. Defaults to `None`:
            `hidden_dim // num_heads`, which must divide exactly.
        output_dim: int. The size of the output. Defaults to `None`: the
            hidden size of the query.
        dropout: float. Dropout on the attention probabilities.
            Defaults to `0.0`.
        use_bias: bool. Whether the projections have biases.
            Defaults to `True`.
        fused_qkv: bool. Whether self-attention uses one fused QKV
            projection. Defaults to `True`.
        use_rotary_embedding: bool. Whether to apply
            `keraslm.layers.RotaryEmbedding` to the queries and keys of
            self-attention (positions start at `cache_update_index`).
            Defaults to `False`.
        rotary_max_wavelength: float. The `max_wavelength` of the rotary
            embedding. Defaults to `10000`.
        kernel_initializer: string or `keras.initializers` initializer. The
            initializer of the projection kernels, each scaled as the kernel
            of the equivalent `Dense` layer. Defaults to `"glorot_uniform"`.
        bias_initializer: string or `keras.initializers` initializer.
            Defaults to `"zeros"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        query: tensor `(batch, query_length, hidden_dim)`.
        value: tensor `(batch, key_length, value_hidden_dim)` for
            cross-attention, or `None` for self-attention.
        attention_mask: bool/int tensor `(batch, query_length, key_length)`
            or `(batch, key_length)`, or `None`.
        use_causal_mask: bool. Defaults to `False`.
        cache: float tensor `(batch, 2, max_length, num_heads, head_dim)`
            or `None`.
        cache_update_index: int or int tensor, or `None`.
        return_attention_scores: bool. Whether to also return the attention
            probabilities `(batch, num_heads, query_length, key_length)`.
        training: bool. Whether dropout is active.

    Returns:
        `output`, `(output, attention_scores)`, `(output, cache)` or
        `(output, attention_scores, cache)`.

    Example:

    ```python
    import numpy as np
    import keraslm

    attention = keraslm.layers.MultiHeadAttention(num_heads=4)
    x = np.random.uniform(size=(2, 10, 32)).astype("float32")
    y = attention(x, use_causal_mask=True)  # (2, 10, 32)

    # Incremental decoding, one token at a time.
    cache = np.zeros((2, 2, 10, 4, 8), "float32")
    for index in range(10):
        y_t, cache = attention(
            x[:, index : index + 1],
            use_causal_mask=True,
            cache=cache,
            cache_update_index=index,
        )
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(
        self,
        num_heads,
        key_dim=None,
        output_dim=None,
        dropout=0.0,
        use_bias=True,
        fused_qkv=True,
        use_rotary_embedding=False,
        rotary_max_wavelength=10000,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive_int("num_heads", num_heads)
        if key_dim is not None:
            validate_positive_int("key_dim", key_dim)
        if output_dim is not None:
            validate_positive_int("output_dim", output_dim)
        validate_rate("dropout", dropout)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.output_dim = output_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.fused_qkv = fused_qkv
        self.use_rotary_embedding = use_rotary_embedding
        self.rotary_max_wavelength = rotary_max_wavelength
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _kernel(self, name, shape, fan_in_axes, stacked=False):
        initializer = dense_like_initializer(
            clone_initializer(self.kernel_initializer), fan_in_axes, stacked
        )
        return self.add_weight(name=name, shape=shape, initializer=initializer)

    def _bias(self, name, shape):
        if not self.use_bias:
            return None
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=clone_initializer(self.bias_initializer),
        )

    def build(self, query_shape, value_shape=None):
        hidden_dim = query_shape[-1]
        if self.key_dim is None:
            if hidden_dim % self.num_heads:
                raise ValueError(
                    "`hidden_dim` must be divisible by `num_heads`. "
                    f"Received: hidden_dim={hidden_dim}, "
                    f"num_heads={self.num_heads}"
                )
            head_dim = hidden_dim // self.num_heads
        else:
            head_dim = self.key_dim
        self.head_dim = head_dim
        self.is_self_attention = value_shape is None
        heads = (self.num_heads, head_dim)
        if self.is_self_attention and self.fused_qkv:
            self.qkv_kernel = self._kernel(
                "qkv_kernel", (hidden_dim, 3, *heads), 1, stacked=True
            )
            self.qkv_bias = self._bias("qkv_bias", (3, *heads))
        else:
            value_dim = hidden_dim if value_shape is None else value_shape[-1]
            self.query_kernel = self._kernel("query_kernel", (hidden_dim, *heads), 1)
            self.query_bias = self._bias("query_bias", heads)
            self.key_kernel = self._kernel("key_kernel", (value_dim, *heads), 1)
            self.key_bias = self._bias("key_bias", heads)
            self.value_kernel = self._kernel("value_kernel", (value_dim, *heads), 1)
            self.value_bias = self._bias("value_bias", heads)
        output_dim = self.output_dim or hidden_dim
        self.output_kernel = self._kernel("output_kernel", (*heads, output_dim), 2)
        self.output_bias = self._bias("output_bias", (output_dim,))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.rotary_embedding = None
        if self.use_rotary_embedding:
            self.rotary_embedding = RotaryEmbedding(
                max_wavelength=self.rotary_max_wavelength,
                dtype=self.dtype_policy,
                name="rotary_embedding",
            )

    def _project(self, x, kernel, bias):
        x = ops.einsum("btm,mhd->bthd", x, kernel)
        return x if bias is None else x + bias

    def compute_key_value_cache(self, value):
        """Returns keys and values of `value` as a cache for cross-attention.

        The result, `(batch, 2, key_length, num_heads, head_dim)`, can be
        passed as `cache` with `cache_update_index=None` on every decoding
        step so the encoder outputs are projected only once.
        """
        # Called outside `__call__`, so no autocasting: cast explicitly.
        dtype = self.compute_dtype
        value = ops.cast(value, dtype)

        def cast(weight):
            return None if weight is None else ops.cast(weight, dtype)

        key = self._project(value, cast(self.key_kernel), cast(self.key_bias))
        value = self._project(
            value, cast(self.value_kernel), cast(self.value_bias)
        )
        return ops.stack((key, value), axis=1)

    def call(
        self,
        query,
        value=None,
        attention_mask=None,
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
        return_attention_scores=False,
        training=None,
    ):
        if (value is None) != self.is_self_attention:
            kind = "self" if self.is_self_attention else "cross"
            raise ValueError(
                f"This `MultiHeadAttention` layer was built for {kind}-attention "
                "by its first call and must keep being called the same way: "
                "`layer(query)` for self-attention, `layer(query, value)` for "
                f"cross-attention. Received: value={'None' if value is None else 'a tensor'}"
            )
        if cache_update_index is not None and cache is None:
            raise ValueError(
                "`cache_update_index` needs a `cache`. Received: cache=None, "
                f"cache_update_index={cache_update_index}"
            )
        if self.is_self_attention and cache is not None and cache_update_index is None:
            raise ValueError(
                "Self-attention with a `cache` needs `cache_update_index`, the "
                "position of the first query token. Received: "
                "cache_update_index=None"
            )
        start_index = 0 if cache_update_index is None else cache_update_index
        key_mask = get_keras_mask(query if value is None else value)

        # Projections.
        new_length = None
        if self.is_self_attention:
            if self.fused_qkv:
                qkv = ops.einsum("btm,mkhd->btkhd", query, self.qkv_kernel)
                if self.qkv_bias is not None:
                    qkv = qkv + self.qkv_bias
                # unstack, not three slices: its gradient is one stack, where
                # three slices cost three zero-padded copies and their sum.
                q, k, v = ops.unstack(qkv, 3, axis=2)
            else:
                q = self._project(query, self.query_kernel, self.query_bias)
                k = self._project(query, self.key_kernel, self.key_bias)
                v = self._project(query, self.value_kernel, self.value_bias)
            if self.rotary_embedding is not None:
                q = self.rotary_embedding(q, start_index=start_index)
                k = self.rotary_embedding(k, start_index=start_index)
        else:
            q = self._project(query, self.query_kernel, self.query_bias)
            if cache is None or cache_update_index is not None:
                k = self._project(value, self.key_kernel, self.key_bias)
                v = self._project(value, self.value_kernel, self.value_bias)

        # Cache: read, or write the new keys/values at `cache_update_index`.
        if cache is not None:
            if cache_update_index is None:
                k, v = cache[:, 0], cache[:, 1]
            else:
                new_length = ops.shape(k)[1]
                start = [0, ops.cast(cache_update_index, "int32"), 0, 0]
                k = ops.slice_update(cache[:, 0], start, ops.cast(k, cache.dtype))
                v = ops.slice_update(cache[:, 1], start, ops.cast(v, cache.dtype))
                cache = ops.stack((k, v), axis=1)
                k = ops.cast(k, q.dtype)
                v = ops.cast(v, q.dtype)
            key_mask = None  # Implicit masks do not cover the cache length.

        mask = self._compute_mask(
            ops.shape(q)[1],
            ops.shape(k)[1],
            attention_mask,
            key_mask,
            use_causal_mask,
            start_index,
            new_length,
        )

        if self._use_fused_attention(return_attention_scores, training):
            # The backend's kernel (on JAX: cuDNN flash attention on a GPU in
            # bfloat16/float16, else XLA); the same math, softmax in float32.
            output = ops.dot_product_attention(
                q, k, v, mask=mask, scale=1.0 / math.sqrt(self.head_dim)
            )
            output = ops.einsum("bthd,hdo->bto", output, self.output_kernel)
            if self.output_bias is not None:
                output = output + self.output_bias
            return output if cache is None else (output, cache)

        # Scaled dot-product attention, softmax in float32.
        q = q * ops.cast(1.0 / math.sqrt(self.head_dim), q.dtype)
        scores = ops.einsum("bthd,bshd->bhts", q, k)
        scores = ops.cast(scores, "float32")
        if mask is not None:
            scores = ops.where(mask, scores, _MASKED_SCORE)
        probabilities = ops.softmax(scores, axis=-1)
        probabilities = ops.cast(probabilities, self.compute_dtype)
        dropped = self.dropout_layer(probabilities, training=training)
        output = ops.einsum("bhts,bshd->bthd", dropped, v)
        output = ops.einsum("bthd,hdo->bto", output, self.output_kernel)
        if self.output_bias is not None:
            output = output + self.output_bias

        outputs = (output,)
        if return_attention_scores:
            outputs += (probabilities,)
        if cache is not None:
            outputs += (cache,)
        return outputs[0] if len(outputs) == 1 else outputs

    def _use_fused_attention(self, return_attention_scores, training):
        """Whether `ops.dot_product_attention` computes the attention.

        Only where the backend has a fused kernel (JAX, PyTorch) and nothing
        needs the probabilities themselves: not when they are returned, and
        not for dropout on them in training. TensorFlow has no such kernel
        (its `dot_product_attention` is the same einsum-softmax-einsum as
        below), so it keeps the measured explicit path.
        """
        if keras.config.backend() == "tensorflow" or return_attention_scores:
            return False
        return not (self.dropout > 0 and training)

    def _compute_mask(
        self,
        query_length,
        key_length,
        attention_mask,
        key_mask,
        use_causal_mask,
        start_index,
        new_length,
    ):
        """Combines all masks into one bool `(batch|1, 1, query, key)` mask."""
        mask = None

        def merge(mask, other):
            other = ops.cast(other, "bool")
            return other if mask is None else ops.logical_and(mask, other)

        if attention_mask is not None:
            attention_mask = ops.cast(attention_mask, "bool")
            if len(attention_mask.shape) == 2:  # Key padding mask.
                attention_mask = attention_mask[:, None, :]
            mask = merge(mask, attention_mask)
        if key_mask is not None:
            mask = merge(mask, key_mask[:, None, :])
        if use_causal_mask or new_length is not None:
            start = ops.cast(start_index, "int32")
            query_positions = ops.arange(query_length, dtype="int32") + start
            key_positions = ops.arange(key_length, dtype="int32")
            if use_causal_mask:
                position_mask = key_positions[None, :] <= query_positions[:, None]
            else:  # Only cache slots written so far.
                position_mask = ops.broadcast_to(
                    key_positions[None, :] < start + new_length,
                    (query_length, key_length),
                )
            mask = merge(mask, ops.expand_dims(position_mask, 0))
        if mask is None:
            return None
        # expand_dims: a bool StridedSlice with a new axis is not a TFLite builtin.
        return ops.expand_dims(mask, 1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "output_dim": self.output_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "fused_qkv": self.fused_qkv,
            "use_rotary_embedding": self.use_rotary_embedding,
            "rotary_max_wavelength": self.rotary_max_wavelength,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
        }
