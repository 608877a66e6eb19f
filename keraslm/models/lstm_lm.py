import keras

from keraslm.layers import LSTMStack
from keraslm.layers import TokenEmbedding
from keraslm.models import presets
from keraslm.models.base import BuilderModel


@keras.saving.register_keras_serializable(package="keraslm")
class LSTMLM(BuilderModel):
    """Embedding -> stacked LSTM/GRU -> Dense language model (the baseline).

    Token ids `(batch, length)` (id 0 is padding, masked through the stack)
    -> logits `(batch, length, vocabulary_size)`. `call_with_state` runs
    new tokens on from the recurrent state of earlier ones (decoding).

    Parameters (LSTM): `V*d + R(d) + (num_layers - 1)*R(u) + u*V + V` with
    `R(n) = 4*(n*u + u*u + u)`, vocabulary V, embedding d, units u.

    Args:
        vocabulary_size: int.
        hidden_dim: int. Embedding width.
        units: int. Recurrent state size.
        num_layers: int. Defaults to `1`.
        cell_type: str. `"lstm"` or `"gru"`. Defaults to `"lstm"`.
        dropout: float. Between layers. Defaults to `0.0`.
        unroll: bool. Unroll the time loop (static length; for TFLite).
            Defaults to `False`.

    Example:

    ```python
    model = keraslm.models.lstm_lm(vocabulary_size=1000, preset="tiny")
    logits = model(np.array([[5, 9, 2, 0]]))   # (1, 4, 1000)
    ```
    """

    config_arguments = ("vocabulary_size", "hidden_dim", "units", "num_layers",
                        "cell_type", "dropout", "unroll")

    def __init__(self, vocabulary_size, hidden_dim, units, num_layers=1,
                 cell_type="lstm", dropout=0.0, unroll=False, dtype=None,
                 **kwargs):
        embedding = TokenEmbedding(vocabulary_size, hidden_dim, mask_zero=True,
                                   dtype=dtype, name="token_embedding")
        stack = LSTMStack(units=units, num_layers=num_layers, cell_type=cell_type,
                          dropout=dropout, unroll=unroll, dtype=dtype,
                          name="recurrent_stack")
        output = keras.layers.Dense(vocabulary_size, dtype=dtype, name="logits")
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        logits = output(stack(embedding(token_ids)))
        super().__init__(inputs=token_ids, outputs=logits, dtype=dtype, **kwargs)
        self.store_arguments(locals())
        self.token_embedding = embedding
        self.recurrent_stack = stack
        self.logits_layer = output

    def hidden_states_model(self):
        """A model sharing these weights that returns the recurrent outputs."""
        return keras.Model(self.input, self.recurrent_stack.output,
                           name=f"{self.name}_backbone")

    def call_with_state(self, token_ids, states=None):
        """Runs token ids on from recurrent `states`: one decoding step
        costs one position instead of the whole sequence.

        Id 0 is padding and leaves the state unchanged, so a left-padded
        prompt ends in the state of the prompt alone. Feeding a sequence in
        pieces, each from the state the previous piece returned, gives the
        logits of the whole-sequence call.

        Args:
            token_ids: int `(batch, length)`.
            states: the `states` a previous call returned, or None (zeros).

        Returns:
            `(logits, states)`: logits `(batch, length, vocabulary_size)`
            and, for each recurrent layer, its state tensors.

        Example:

        ```python
        logits, states = model.call_with_state(np.array([[5, 9, 2]]))
        logits, states = model.call_with_state(np.array([[7]]), states)
        ```
        """
        from keras import ops

        token_ids = ops.convert_to_tensor(token_ids, "int32")
        x = self.token_embedding(token_ids)
        outputs, states = self.recurrent_stack.call_with_state(
            x, states, mask=ops.not_equal(token_ids, 0))
        return self.logits_layer(outputs), states



def lstm_lm(vocabulary_size=None, *, preset=None, hidden_dim=None, units=None,
            num_layers=None, dropout=None, **kwargs):
    """Builds an `LSTMLM`: Embedding -> LSTM stack -> Dense.

    Args:
        vocabulary_size: int. Number of token ids.
        preset: str or None. `"tiny"`, `"small"` or `"base"`.
        hidden_dim, units, num_layers, dropout: override the preset.
        **kwargs: other `LSTMLM` arguments (`cell_type`, `unroll`, `dtype`).

    Example:

    ```python
    model = keraslm.models.lstm_lm(vocabulary_size=8192, preset="tiny")
    ```
    """
    return presets.build("lstm_lm", LSTMLM, preset, dict(
        vocabulary_size=vocabulary_size, hidden_dim=hidden_dim, units=units,
        num_layers=num_layers, dropout=dropout),
        ("vocabulary_size", "hidden_dim", "units"), kwargs)
