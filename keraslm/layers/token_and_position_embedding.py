import keras

from keraslm.layers._utils import clone_initializer
from keraslm.layers._utils import validate_choice
from keraslm.layers.position_embedding import PositionEmbedding
from keraslm.layers.sinusoidal_position_encoding import (
    SinusoidalPositionEncoding,
)
from keraslm.layers.token_embedding import TokenEmbedding


@keras.saving.register_keras_serializable(package="keraslm")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Sum of a token embedding and a position embedding or encoding.

    Embeds token ids with a `keraslm.layers.TokenEmbedding` (the attribute
    `token_embedding`) and adds learned (`keraslm.layers.PositionEmbedding`)
    or fixed sinusoidal (`keraslm.layers.SinusoidalPositionEncoding`)
    positions. With `mask_zero=True`, id `0` is padding and the output
    carries a Keras mask.

    Tied output logits: `layer(hidden_states, reverse=True)` projects hidden
    states to vocabulary logits with the transposed token embedding. In a
    functional model, call the layer itself this way (a shared layer) rather
    than `layer.token_embedding`: Keras cannot save a functional model that
    uses a sublayer of another layer directly.

    Args:
        vocabulary_size: int. The number of token ids.
        sequence_length: int. The maximum sequence length.
        hidden_dim: int. The size of each embedding vector.
        position_encoding: string. `"learned"` or `"sinusoidal"`.
            Defaults to `"learned"`.
        embeddings_initializer: string or `keras.initializers` initializer.
            The initializer of the token and learned position embeddings.
            Defaults to `"uniform"`.
        mask_zero: bool. Whether id `0` is padding. Defaults to `False`.
        tie_weights: bool. Passed to the token embedding: whether its
            reverse projection reuses the embedding matrix. Defaults to
            `True`.
        scale_embeddings: bool. Whether token embeddings are multiplied by
            `sqrt(hidden_dim)` before positions are added, as in the original
            Transformer. Defaults to `False`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: int tensor of token ids `(batch_size, length)`, or with
            `reverse=True` float hidden states `(batch_size, length,
            hidden_dim)`.
        start_index: int or int tensor. The position of the first token, for
            cached decoding. Defaults to `0`.
        reverse: bool. Whether to return logits
            `(batch_size, length, vocabulary_size)` from hidden states.
            Defaults to `False`.

    Example:

    ```python
    import numpy as np
    import keraslm

    embedding = keraslm.layers.TokenAndPositionEmbedding(
        vocabulary_size=100, sequence_length=32, hidden_dim=16, mask_zero=True
    )
    hidden = embedding(np.array([[5, 7, 9, 0]]))  # (1, 4, 16)
    logits = embedding(hidden, reverse=True)  # (1, 4, 100)
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        hidden_dim,
        position_encoding="learned",
        embeddings_initializer="uniform",
        mask_zero=False,
        tie_weights=True,
        scale_embeddings=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_choice(
            "position_encoding", position_encoding, ("learned", "sinusoidal")
        )
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.position_encoding = position_encoding
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.mask_zero = mask_zero
        self.tie_weights = tie_weights
        self.scale_embeddings = scale_embeddings
        self.supports_masking = mask_zero
        # Created here (not in build) so `token_embedding` can be shared, e.g.
        # for tied logits, before the layer is first called.
        self.token_embedding = TokenEmbedding(
            vocabulary_size=vocabulary_size,
            hidden_dim=hidden_dim,
            embeddings_initializer=clone_initializer(self.embeddings_initializer),
            mask_zero=mask_zero,
            tie_weights=tie_weights,
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        if position_encoding == "learned":
            self.position_embedding = PositionEmbedding(
                sequence_length=sequence_length,
                initializer=clone_initializer(self.embeddings_initializer),
                dtype=self.dtype_policy,
                name="position_embedding",
            )
        else:
            self.position_embedding = SinusoidalPositionEncoding(
                dtype=self.dtype_policy, name="position_embedding"
            )

    def build(self, inputs_shape=None):
        # Independent of the first call's shape, which may be `reverse=True`.
        self.token_embedding.build()
        self.position_embedding.build(
            (None, self.sequence_length, self.hidden_dim)
        )

    def call(self, inputs, start_index=0, reverse=False):
        if reverse:
            return self.token_embedding(inputs, reverse=True)
        embedded = self.token_embedding(inputs)
        if self.scale_embeddings:
            embedded = embedded * keras.ops.cast(
                self.hidden_dim**0.5, embedded.dtype
            )
        return embedded + self.position_embedding(
            embedded, start_index=start_index
        )

    def compute_mask(self, inputs, mask=None):
        return self.token_embedding.compute_mask(inputs, mask)

    def compute_output_spec(self, inputs, start_index=0, reverse=False):
        return self.token_embedding.compute_output_spec(inputs, reverse=reverse)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "position_encoding": self.position_encoding,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer
            ),
            "mask_zero": self.mask_zero,
            "tie_weights": self.tie_weights,
            "scale_embeddings": self.scale_embeddings,
        }
