import keras


@keras.saving.register_keras_serializable(package="keraslm")
class MaskedLMTransform(keras.layers.Layer):
    """BERT's masked-LM transform: Dense -> activation -> LayerNorm.

    Applied to the encoder's hidden states before the tied projection onto
    the token embedding (see `keraslm.heads.masked_lm_model`).

    Args:
        activation: str. Defaults to `"gelu"`.
        layer_norm_epsilon: float. Defaults to `1e-12`.

    Example:

    ```python
    transform = keraslm.heads.MaskedLMTransform()
    transform(np.random.rand(2, 5, 32).astype("float32")).shape  # (2, 5, 32)
    ```
    """

    def __init__(self, activation="gelu", layer_norm_epsilon=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.supports_masking = True

    def build(self, inputs_shape):
        self.dense = keras.layers.Dense(inputs_shape[-1], activation=self.activation,
                                        dtype=self.dtype_policy, name="dense")
        self.dense.build(inputs_shape)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy,
            name="layer_norm")
        self.layer_norm.build(inputs_shape)

    def call(self, inputs):
        return self.layer_norm(self.dense(inputs))

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon}


@keras.saving.register_keras_serializable(package="keraslm")
class OutputBias(keras.layers.Layer):
    """A learned bias per output class (vocabulary entry), added to logits.

    BERT's masked-LM head adds one after the tied embedding projection
    (keras-hub's `MaskedLMHead` does too): the bias holds the token
    frequencies, so the hidden states need not.

    Example:

    ```python
    bias = keraslm.heads.OutputBias()
    bias(np.zeros((2, 5, 100), "float32")).shape  # (2, 5, 100)
    ```
    """

    def build(self, inputs_shape):
        self.bias = self.add_weight(name="bias", shape=(inputs_shape[-1],),
                                    initializer="zeros")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.bias, inputs.dtype)
