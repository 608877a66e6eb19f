import keras
from keras import ops

from keraslm.layers._utils import clone_initializer
from keraslm.layers._utils import validate_positive_int
from keraslm.layers._utils import validate_rate

_GATED_ACTIVATIONS = {"swiglu": "silu", "geglu": "gelu"}


@keras.saving.register_keras_serializable(package="keraslm")
class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward network of a Transformer block.

    `output_dense(activation(intermediate_dense(x)))`, or for the gated
    activations `"swiglu"` / `"geglu"`:
    `output_dense(silu|gelu(gate_dense(x)) * intermediate_dense(x))`.
    The output has the input's hidden size (or `output_dim`).

    Args:
        intermediate_dim: int. The hidden size of the intermediate layer.
        activation: string or callable. `"relu"`, `"gelu"`, `"swiglu"`,
            `"geglu"` or any `keras.activations` name. Defaults to `"relu"`.
        dropout: float. Dropout on the intermediate activations.
            Defaults to `0.0`.
        output_dim: int. The output size. Defaults to `None`: the input's
            hidden size.
        use_bias: bool. Whether the dense layers have biases.
            Defaults to `True`.
        kernel_initializer: string or `keras.initializers` initializer.
            Defaults to `"glorot_uniform"`.
        bias_initializer: string or `keras.initializers` initializer.
            Defaults to `"zeros"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Example:

    ```python
    import numpy as np
    import keraslm

    feed_forward = keraslm.layers.FeedForward(
        intermediate_dim=64, activation="swiglu"
    )
    y = feed_forward(np.random.uniform(size=(2, 10, 16)))  # (2, 10, 16)
    ```

    References:
     - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
     - [Shazeer, 2020](https://arxiv.org/abs/2002.05202)
    """

    def __init__(
        self,
        intermediate_dim,
        activation="relu",
        dropout=0.0,
        output_dim=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive_int("intermediate_dim", intermediate_dim)
        validate_rate("dropout", dropout)
        if activation not in _GATED_ACTIVATIONS:
            try:
                keras.activations.get(activation)
            except ValueError as error:
                raise ValueError(
                    "`activation` must be 'relu', 'gelu', 'swiglu', 'geglu' "
                    "or a `keras.activations` name. "
                    f"Received: activation={activation!r}"
                ) from error
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.output_dim = output_dim
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = True

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            use_bias=self.use_bias,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, inputs_shape):
        gated = self.activation in _GATED_ACTIVATIONS
        if gated:
            self.gate_dense = self._dense(
                self.intermediate_dim,
                "gate_dense",
                activation=_GATED_ACTIVATIONS[self.activation],
            )
            self.gate_dense.build(inputs_shape)
        else:
            self.gate_dense = None
        self.intermediate_dense = self._dense(
            self.intermediate_dim,
            "intermediate_dense",
            activation=None if gated else self.activation,
        )
        self.intermediate_dense.build(inputs_shape)
        self.output_dense = self._dense(
            self.output_dim or inputs_shape[-1], "output_dense"
        )
        self.output_dense.build((*inputs_shape[:-1], self.intermediate_dim))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )

    def call(self, inputs, training=None):
        x = self.intermediate_dense(inputs)
        if self.gate_dense is not None:
            x = ops.multiply(self.gate_dense(inputs), x)
        x = self.dropout_layer(x, training=training)
        return self.output_dense(x)

    def compute_output_shape(self, inputs_shape):
        return (*inputs_shape[:-1], self.output_dim or inputs_shape[-1])

    def get_config(self):
        activation = self.activation
        if not isinstance(activation, str):
            activation = keras.activations.serialize(activation)
        return {
            **super().get_config(),
            "intermediate_dim": self.intermediate_dim,
            "activation": activation,
            "dropout": self.dropout,
            "output_dim": self.output_dim,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer
            ),
        }
