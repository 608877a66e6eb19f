import keras
from keras import ops

from keraslm.layers._utils import validate_positive_int


@keras.saving.register_keras_serializable(package="keraslm")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embedding (as in BERT and GPT-2).

    Holds one trainable vector per position up to `sequence_length` and
    returns, for inputs of shape `(batch_size, length, hidden_dim)`, the
    embeddings of positions `start_index .. start_index + length - 1`
    broadcast to the input shape, ready to be added to the token embeddings.

    Args:
        sequence_length: int. The maximum number of positions.
        initializer: string or `keras.initializers` initializer. The
            initializer of the position embeddings. Defaults to
            `"glorot_uniform"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: tensor of shape `(batch_size, length, hidden_dim)`; only its
            shape is used. `length` must not exceed `sequence_length`.
        start_index: int or int tensor. The position of the first element,
            for cached decoding. Defaults to `0`.

    Example:

    ```python
    import numpy as np
    import keraslm

    hidden = np.random.uniform(size=(2, 10, 16)).astype("float32")
    positions = keraslm.layers.PositionEmbedding(sequence_length=32)(hidden)
    hidden = hidden + positions  # (2, 10, 16)
    ```

    References:
     - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        validate_positive_int("sequence_length", sequence_length)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        length = inputs_shape[-2]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                "The input length must not exceed `sequence_length`. "
                f"Received: input length={length}, "
                f"sequence_length={self.sequence_length}"
            )
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, hidden_dim = shape[-2], shape[-1]
        embeddings = ops.slice(
            ops.convert_to_tensor(self.position_embeddings),
            (ops.cast(start_index, "int32"), 0),
            (length, hidden_dim),
        )
        return ops.broadcast_to(embeddings, shape)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "initializer": keras.initializers.serialize(self.initializer),
        }
