"""The `span` loss."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm_qa")
class SpanLoss(keras.losses.Loss):
    """Mean of the start-position and end-position cross-entropies.

    `y_true`: int `(batch, 2)` holding `[start, end]` token positions
    (inclusive). `y_pred`: logits `(batch, 2, length)` from the `qa_span`
    head. Positions outside `[0, length)` are an error in the data, reported
    with the offending values by `check_positions`.

    Example:

    ```python
    loss = keraslm.registry.losses.build("span")
    loss(np.array([[3, 5]]), np.random.randn(1, 2, 10).astype("float32"))
    ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="span", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        picked = ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1)
        return -ops.mean(ops.squeeze(picked, -1), axis=-1)


def check_positions(positions, length):
    """Raises ValueError naming the first answer span outside the sequence."""
    import numpy as np

    positions = np.asarray(positions)
    bad = np.argwhere((positions < 0) | (positions >= length)
                      | (positions[:, :1] > positions[:, 1:2]))
    if len(bad):
        row = int(bad[0][0])
        raise ValueError(
            f"Answer span {positions[row].tolist()} of example {row} is not a "
            f"valid span of a sequence of length {length}: expected "
            f"0 <= start <= end < {length}."
        )
