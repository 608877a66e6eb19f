import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm")
class RotaryEmbedding(keras.layers.Layer):
    """Rotary position embedding (RoPE).

    Rotates pairs of features by an angle proportional to the position, so
    that the dot product of a rotated query and key depends only on their
    relative distance. Feature `i` of the first half is paired with feature
    `i + feature_dim / 2` of the second half (the "rotate half" layout of
    GPT-NeoX, LLaMA and `keras_hub.layers.RotaryEmbedding`), with frequency
    `max_wavelength^(-2i / feature_dim) / scaling_factor`. Angles are computed
    in float32. The layer has no weights and returns a tensor of the input's
    shape.

    Args:
        max_wavelength: float. The base of the geometric progression of
            wavelengths. Defaults to `10000`.
        scaling_factor: float. Positions are divided by this factor (linear
            position interpolation for longer contexts). Defaults to `1.0`.
        sequence_axis: int. The sequence axis of the inputs. Defaults to `1`.
        feature_axis: int. The feature axis of the inputs; its size must be
            even. Defaults to `-1`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: tensor with a sequence and a feature axis, typically
            `(batch_size, sequence_length, num_heads, head_dim)` or
            `(batch_size, sequence_length, hidden_dim)`.
        start_index: int or int tensor. The position of the first element,
            for cached decoding. Defaults to `0`.

    Example:

    ```python
    import numpy as np
    import keraslm

    query = np.random.uniform(size=(2, 10, 4, 8)).astype("float32")
    rotated = keraslm.layers.RotaryEmbedding()(query)  # (2, 10, 4, 8)
    ```

    References:
     - [Su et al., 2021](https://arxiv.org/abs/2104.09864)
    """

    def __init__(
        self,
        max_wavelength=10000,
        scaling_factor=1.0,
        sequence_axis=1,
        feature_axis=-1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if max_wavelength <= 0 or scaling_factor <= 0:
            raise ValueError(
                "`max_wavelength` and `scaling_factor` must be positive. "
                f"Received: max_wavelength={max_wavelength}, "
                f"scaling_factor={scaling_factor}"
            )
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.sequence_axis = sequence_axis
        self.feature_axis = feature_axis
        self.supports_masking = True
        self.built = True

    def call(self, inputs, start_index=0):
        rank = len(inputs.shape)
        sequence_axis = self.sequence_axis % rank
        feature_axis = self.feature_axis % rank
        if sequence_axis == feature_axis:
            raise ValueError(
                "`sequence_axis` and `feature_axis` must differ. Received: "
                f"sequence_axis={self.sequence_axis}, "
                f"feature_axis={self.feature_axis}"
            )
        feature_dim = inputs.shape[feature_axis]
        if feature_dim is not None and feature_dim % 2:
            raise ValueError(
                "The feature axis of `RotaryEmbedding` inputs must be even. "
                f"Received: inputs.shape={inputs.shape}, "
                f"feature_axis={self.feature_axis}"
            )
        x = ops.moveaxis(inputs, (sequence_axis, feature_axis), (-2, -1))
        cos, sin = self._cos_sin(ops.shape(x)[-2], ops.shape(x)[-1], start_index)
        x1, x2 = ops.split(x, 2, axis=-1)
        rotated = ops.concatenate((-x2, x1), axis=-1)
        x = x * cos + rotated * sin
        return ops.moveaxis(x, (-2, -1), (sequence_axis, feature_axis))

    def _cos_sin(self, sequence_length, feature_dim, start_index):
        positions = ops.cast(ops.arange(sequence_length), "float32")
        positions = positions + ops.cast(start_index, "float32")
        exponent = ops.cast(ops.arange(0, feature_dim, 2), "float32") / ops.cast(
            feature_dim, "float32"
        )
        inverse_frequency = ops.power(
            ops.cast(self.max_wavelength, "float32"), -exponent
        ) / ops.cast(self.scaling_factor, "float32")
        angles = positions[:, None] * inverse_frequency[None, :]
        angles = ops.concatenate((angles, angles), axis=-1)
        cos = ops.cast(ops.cos(angles), self.compute_dtype)
        sin = ops.cast(ops.sin(angles), self.compute_dtype)
        return cos, sin

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        return {
            **super().get_config(),
            "max_wavelength": self.max_wavelength,
            "scaling_factor": self.scaling_factor,
            "sequence_axis": self.sequence_axis,
            "feature_axis": self.feature_axis,
        }
