"""Metrics registered by keraslm (`keraslm.registry.metrics`).

Every factory returns a `keras.metrics.Metric`: `update_state` batch by
batch, `result()` at the end. The tasks' evaluations build theirs through the
registry, so a plugin metric is used the same way.

Example:

```python
import numpy as np
import keraslm

f1 = keraslm.registry.metrics.build("macro_f1", num_classes=3)
f1.update_state(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2]))
float(f1.result())        # 0.6
```
"""

import keras
from keras import ops


def perplexity(from_logits=True, mask_token_id=0, **kwargs):
    """Perplexity, `exp` of the mean token cross-entropy, padding ignored.

    Wraps `keras_hub.metrics.Perplexity`.

    Example:

    ```python
    metric = keraslm.registry.metrics.build("perplexity")
    metric.update_state(y_true, logits)
    float(metric.result())
    ```
    """
    import keras_hub

    return keras_hub.metrics.Perplexity(from_logits=from_logits,
                                        mask_token_id=mask_token_id, **kwargs)


@keras.saving.register_keras_serializable(package="keraslm")
class ConfusionMatrix(keras.metrics.Metric):
    """Counts of (true class, predicted class) pairs.

    `update_state(y_true, y_pred)` takes integer labels and either integer
    predictions or float scores/logits (the arg-max of the last axis).
    Labels outside `[0, num_classes)` (padding such as -100) are skipped.
    `result()` is the `(num_classes, num_classes)` matrix, rows true,
    columns predicted, as scikit-learn's `confusion_matrix`.

    Args:
        num_classes: int. The number of classes.

    Example:

    ```python
    matrix = keraslm.registry.metrics.build("confusion_matrix", num_classes=2)
    matrix.update_state([0, 1, 1], [0, 0, 1])
    matrix.result()          # [[1, 0], [1, 1]]
    ```
    """

    def __init__(self, num_classes, name="confusion_matrix", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"`num_classes` must be a positive integer. "
                             f"Received: num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.matrix = self.add_variable(shape=(num_classes, num_classes),
                                        initializer="zeros", dtype="float32",
                                        name="matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.convert_to_tensor(y_pred)
        if "float" in str(y_pred.dtype):  # scores or logits
            y_pred = ops.argmax(y_pred, axis=-1)
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        valid = ops.logical_and(ops.greater_equal(y_true, 0),
                                ops.less(y_true, self.num_classes))
        weights = ops.cast(valid, "float32")
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        y_pred = ops.clip(y_pred, 0, self.num_classes - 1)
        index = ops.where(valid, y_true, 0) * self.num_classes + y_pred
        counts = ops.segment_sum(weights, index,
                                 num_segments=self.num_classes * self.num_classes)
        self.matrix.assign_add(ops.reshape(counts, (self.num_classes, self.num_classes)))

    def result(self):
        return self.matrix

    def reset_state(self):
        self.matrix.assign(ops.zeros_like(self.matrix))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="keraslm")
class MacroF1(ConfusionMatrix):
    """F1 averaged over the classes, each class weighing the same.

    Classes that occur neither in the labels nor in the predictions are left
    out of the average (scikit-learn's `f1_score(average="macro")` over the
    labels present). Same inputs as `ConfusionMatrix`.

    Example:

    ```python
    f1 = keraslm.registry.metrics.build("macro_f1", num_classes=3)
    f1.update_state([0, 1, 2, 2], [0, 2, 2, 2])
    float(f1.result())       # 0.6
    ```
    """

    def __init__(self, num_classes, name="macro_f1", dtype=None, **kwargs):
        super().__init__(num_classes, name=name, dtype=dtype, **kwargs)

    def result(self):
        matrix = self.matrix
        true_positives = ops.diagonal(matrix)
        predicted = ops.sum(matrix, axis=0)
        actual = ops.sum(matrix, axis=1)
        denominator = predicted + actual
        present = ops.greater(denominator, 0)
        f1 = ops.where(present, 2 * true_positives / ops.maximum(denominator, 1e-12), 0.0)
        return ops.sum(f1) / ops.maximum(ops.sum(ops.cast(present, "float32")), 1.0)
