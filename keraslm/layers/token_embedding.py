import keras
from keras import ops

from keraslm.layers._utils import validate_positive_int


@keras.saving.register_keras_serializable(package="keraslm")
class TokenEmbedding(keras.layers.Layer):
    """Token embedding that can also project hidden states back to logits.

    `layer(token_ids)` looks up one `hidden_dim` vector per token id.
    `layer(hidden_states, reverse=True)` multiplies hidden states by the
    transposed embedding matrix and returns logits over the vocabulary, the
    tied input/output embedding of GPT-2 and of the original Transformer. With
    `tie_weights=False` the reverse projection has its own kernel.

    With `mask_zero=True`, id `0` is padding: the layer returns a Keras mask
    (`token_ids != 0`) that downstream keraslm layers use as a padding mask.

    Args:
        vocabulary_size: int. The number of token ids.
        hidden_dim: int. The size of each embedding vector.
        embeddings_initializer: string or `keras.initializers` initializer.
            The initializer of the embedding matrix. Defaults to
            `"uniform"` (as `keras.layers.Embedding`).
        mask_zero: bool. Whether id `0` is padding and produces a mask.
            Defaults to `False`.
        tie_weights: bool. Whether `reverse=True` reuses the embedding matrix
            (`True`) or a separate `(hidden_dim, vocabulary_size)` kernel.
            Defaults to `True`.
        reverse_dtype: string or `None`. The dtype in which the reverse
            projection is computed, e.g. `"float32"` to compute logits in full
            precision under a mixed policy. `None` uses the layer's compute
            dtype. Defaults to `None`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: int tensor of token ids `(batch_size, sequence_length)`, or,
            with `reverse=True`, float hidden states
            `(batch_size, sequence_length, hidden_dim)`.
        reverse: bool. Whether to project hidden states to logits.
            Defaults to `False`.

    Example:

    ```python
    import numpy as np
    import keraslm

    embedding = keraslm.layers.TokenEmbedding(
        vocabulary_size=100, hidden_dim=16, mask_zero=True
    )
    token_ids = np.array([[5, 7, 9, 0]])
    hidden = embedding(token_ids)  # (1, 4, 16)
    logits = embedding(hidden, reverse=True)  # (1, 4, 100)
    ```

    References:
     - [Press and Wolf, 2017](https://arxiv.org/abs/1608.05859)
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        embeddings_initializer="uniform",
        mask_zero=False,
        tie_weights=True,
        reverse_dtype=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive_int("vocabulary_size", vocabulary_size)
        validate_positive_int("hidden_dim", hidden_dim)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.mask_zero = mask_zero
        self.tie_weights = tie_weights
        self.reverse_dtype = reverse_dtype
        self.supports_masking = mask_zero

    def build(self, inputs_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocabulary_size, self.hidden_dim),
            initializer=self.embeddings_initializer,
        )
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                name="reverse_embeddings",
                shape=(self.hidden_dim, self.vocabulary_size),
                initializer=self.embeddings_initializer,
            )

    def call(self, inputs, reverse=False):
        if not reverse:
            if not keras.backend.is_int_dtype(inputs.dtype):
                inputs = ops.cast(inputs, "int32")
            return ops.take(self.embeddings, inputs, axis=0)
        if self.tie_weights:
            kernel = ops.transpose(self.embeddings)
        else:
            kernel = self.reverse_embeddings
        if self.reverse_dtype is not None:
            inputs = ops.cast(inputs, self.reverse_dtype)
            kernel = ops.cast(kernel, self.reverse_dtype)
        else:
            kernel = ops.cast(kernel, inputs.dtype)
        return ops.matmul(inputs, kernel)

    def compute_mask(self, inputs, mask=None):
        # Token ids produce a padding mask; hidden states (reverse=True) keep
        # whatever mask they carry.
        if not self.mask_zero or not keras.backend.is_int_dtype(inputs.dtype):
            return mask
        return ops.not_equal(inputs, 0)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = (*inputs.shape[:-1], self.vocabulary_size)
            dtype = self.reverse_dtype or self.compute_dtype
        else:
            shape = (*inputs.shape, self.hidden_dim)
            dtype = self.compute_dtype
        return keras.KerasTensor(shape, dtype=dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "hidden_dim": self.hidden_dim,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer
            ),
            "mask_zero": self.mask_zero,
            "tie_weights": self.tie_weights,
            "reverse_dtype": self.reverse_dtype,
        }
