import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Fixed sinusoidal position encoding of "Attention Is All You Need".

    Returns, for inputs of shape `(batch_size, sequence_length, hidden_dim)`,
    a tensor of the same shape to add to them:
    `PE(pos, 2i) = sin(pos / max_wavelength^(2i / hidden_dim))` and
    `PE(pos, 2i + 1) = cos(pos / max_wavelength^(2i / hidden_dim))`, i.e.
    sine on even features and cosine on odd features, interleaved (the same
    layout as `keras_hub.layers.SinePositionEncoding`). The angles are
    computed in float32 and cast to the compute dtype at the end. The layer
    has no weights.

    Args:
        max_wavelength: float. The base of the geometric progression of
            wavelengths. Defaults to `10000`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: tensor of shape `(batch_size, sequence_length, hidden_dim)`;
            only its shape is used.
        start_index: int or int tensor. The position of the first element,
            for cached decoding where positions are computed one at a time.
            Defaults to `0`.

    Example:

    ```python
    import numpy as np
    import keraslm

    hidden = np.random.uniform(size=(2, 10, 16)).astype("float32")
    encoding = keraslm.layers.SinusoidalPositionEncoding()(hidden)
    hidden = hidden + encoding  # (2, 10, 16)
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        if max_wavelength <= 0:
            raise ValueError(
                "`max_wavelength` must be positive. "
                f"Received: max_wavelength={max_wavelength}"
            )
        self.max_wavelength = max_wavelength
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        sequence_length, hidden_dim = shape[-2], shape[-1]
        positions = ops.cast(ops.arange(sequence_length), "float32")
        positions = positions + ops.cast(start_index, "float32")
        features = ops.arange(hidden_dim)
        # 2i for both features 2i (sine) and 2i + 1 (cosine).
        even_index = ops.cast(2 * (features // 2), "float32")
        inverse_frequency = ops.power(
            ops.cast(self.max_wavelength, "float32"),
            -even_index / ops.cast(hidden_dim, "float32"),
        )
        angles = positions[:, None] * inverse_frequency[None, :]
        is_odd = ops.equal(features % 2, 1)
        encoding = ops.where(is_odd[None, :], ops.cos(angles), ops.sin(angles))
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding, shape)

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}
