import keras

from keraslm.layers._utils import clone_initializer
from keraslm.layers._utils import validate_choice
from keraslm.layers._utils import validate_positive_int
from keraslm.layers._utils import validate_rate


@keras.saving.register_keras_serializable(package="keraslm")
class LSTMStack(keras.layers.Layer):
    """A stack of (bidirectional) LSTM or GRU layers with masking.

    The recurrent baseline of the Embedding -> LSTM -> Dense language model:
    `num_layers` `keras.layers.LSTM` (or `GRU`) layers, each optionally
    wrapped in `keras.layers.Bidirectional`, with dropout between layers.
    Padding is handled through the Keras mask (e.g. from
    `keraslm.layers.TokenEmbedding(mask_zero=True)`) or an explicit `mask`:
    padded steps neither update the state nor change the outputs of real
    steps.

    Export: the layers use only plain LSTM/GRU cells (no recurrent dropout),
    which TFLite converts to builtin ops when the sequence length is static.
    `unroll=True` unrolls the time loop (needs a static sequence length, best
    for short sequences); otherwise export with a fixed-length signature so
    the loop becomes a builtin `WHILE` (a dynamic length needs Flex ops).

    Args:
        units: int. The state size of each recurrent layer (per direction).
        num_layers: int. The number of stacked layers. Defaults to `1`.
        cell_type: string. `"lstm"` or `"gru"`. Defaults to `"lstm"`.
        bidirectional: bool. Whether each layer reads both directions; a
            language model must keep this `False`. Defaults to `False`.
        merge_mode: string. How directions are merged when bidirectional:
            `"concat"`, `"sum"`, `"mul"` or `"ave"`. Defaults to `"concat"`.
        dropout: float. Dropout between layers (and on the output).
            Defaults to `0.0`.
        return_sequences: bool. Whether to return every step (`True`) or
            the last output (`False`). Defaults to `True`.
        unroll: bool. Whether to unroll the time loop. Defaults to `False`.
        kernel_initializer: string or initializer. Defaults to
            `"glorot_uniform"`.
        recurrent_initializer: string or initializer. Defaults to
            `"orthogonal"`.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `trainable`, `dtype` etc.

    Call arguments:
        inputs: float tensor `(batch, length, features)`.
        mask: bool tensor `(batch, length)` or `None` (defaults to the
            inputs' Keras mask).
        training: bool.

    Example:

    ```python
    import numpy as np
    import keraslm

    stack = keraslm.layers.LSTMStack(units=32, num_layers=2)
    x = np.random.uniform(size=(2, 10, 16)).astype("float32")
    y = stack(x)  # (2, 10, 32)
    ```

    References:
     - [Hochreiter and Schmidhuber, 1997](https://doi.org/10.1162/neco.1997.9.8.1735)
     - [Cho et al., 2014](https://arxiv.org/abs/1406.1078) (GRU)
    """

    def __init__(
        self,
        units,
        num_layers=1,
        cell_type="lstm",
        bidirectional=False,
        merge_mode="concat",
        dropout=0.0,
        return_sequences=True,
        unroll=False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive_int("units", units)
        validate_positive_int("num_layers", num_layers)
        validate_choice("cell_type", cell_type, ("lstm", "gru"))
        validate_choice("merge_mode", merge_mode, ("concat", "sum", "mul", "ave"))
        validate_rate("dropout", dropout)
        self.units = units
        self.num_layers = num_layers
        self.cell_type = cell_type
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.unroll = unroll
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        rnn_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[
            self.cell_type
        ]
        self.recurrent_layers = []
        self.dropout_layers = []
        shape = tuple(inputs_shape)
        for index in range(self.num_layers):
            last = index == self.num_layers - 1
            layer = rnn_class(
                self.units,
                return_sequences=self.return_sequences or not last,
                unroll=self.unroll,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                recurrent_initializer=clone_initializer(
                    self.recurrent_initializer
                ),
                dtype=self.dtype_policy,
                name=f"{self.cell_type}_{index}",
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(
                    layer,
                    merge_mode=self.merge_mode,
                    dtype=self.dtype_policy,
                    name=f"bidirectional_{self.cell_type}_{index}",
                )
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
            self.recurrent_layers.append(layer)
            self.dropout_layers.append(
                keras.layers.Dropout(
                    self.dropout, dtype=self.dtype_policy, name=f"dropout_{index}"
                )
            )

    def call(self, inputs, mask=None, training=None):
        x = inputs
        for layer, dropout in zip(self.recurrent_layers, self.dropout_layers):
            x = layer(x, mask=mask, training=training)
            x = dropout(x, training=training)
        return x

    def call_with_state(self, inputs, states=None, mask=None, training=False):
        """Runs `inputs` on from `states` and returns `(outputs, states)`.

        For step-by-step decoding: the state after a sequence is the state
        the whole-sequence call reaches, so feeding the next tokens from it
        gives the outputs of running everything again. A length-1 input
        (one decoding step) runs the cells directly; padded steps (`mask`
        False, e.g. left padding) leave the state unchanged.

        Args:
            inputs: float tensor `(batch, length, features)`.
            states: list with one entry per layer, the layer's state
                tensors (`[h, c]` for LSTM, `[h]` for GRU), or None for
                zeros.
            mask: bool tensor `(batch, length)` or None.
            training: bool. Defaults to `False`.

        Returns:
            `(outputs, states)`: outputs `(batch, length, units)` and the
            states in the same structure.
        """
        if self.bidirectional:
            raise ValueError(
                "`call_with_state` needs a unidirectional stack (a backward "
                "direction has no state to carry forward). Received: "
                "bidirectional=True"
            )
        x = inputs
        new_states = []
        for index, (layer, dropout) in enumerate(
            zip(self.recurrent_layers, self.dropout_layers)
        ):
            if states is None:
                initial = layer.get_initial_state(keras.ops.shape(x)[0])
            else:
                initial = list(states[index])
            if x.shape[1] == 1:
                output, state = layer.cell(x[:, 0], initial, training=training)
                state = list(state) if isinstance(state, (list, tuple)) else [state]
                if mask is not None:
                    keep = keras.ops.cast(mask[:, :1], "bool")
                    state = [
                        keras.ops.where(keep, new, old)
                        for new, old in zip(state, initial)
                    ]
                output = output[:, None, :]
            else:
                _, output, state = layer.inner_loop(
                    x, initial, mask, training=training
                )
                state = list(state)
            x = dropout(output, training=training)
            new_states.append(state)
        return x, new_states

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, inputs_shape):
        features = self.units * (
            2 if self.bidirectional and self.merge_mode == "concat" else 1
        )
        if self.return_sequences:
            return (*inputs_shape[:-1], features)
        return (inputs_shape[0], features)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "num_layers": self.num_layers,
            "cell_type": self.cell_type,
            "bidirectional": self.bidirectional,
            "merge_mode": self.merge_mode,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
            "unroll": self.unroll,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer
            ),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer
            ),
        }
