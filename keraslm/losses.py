"""Losses for language-model tasks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Sparse cross-entropy averaged over real tokens only.

    Positions whose label equals `ignore_class` (the padding id by default)
    contribute nothing, and the mean is taken over the remaining positions, so
    the loss of a batch does not depend on how much padding it has. The
    log-softmax is computed in float32 even under mixed precision.

    Args:
        from_logits: bool. Whether `y_pred` holds logits (`True`) or
            probabilities. Defaults to `True`.
        ignore_class: int or None. Label value to ignore. Defaults to `0`
            (keraslm's padding id); use `-100` for token classification.
        label_smoothing: float in [0, 1). Mixes the one-hot target with a
            uniform distribution over the vocabulary. Defaults to `0.0`.
        reduction: str. As in `keras.losses.Loss`. Defaults to
            `"sum_over_batch_size"` (the mean over real tokens).
        name: str. Defaults to `"masked_sparse_categorical_crossentropy"`.

    Example:

    ```python
    loss = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy")
    y_true = np.array([[5, 2, 0, 0]])            # two real tokens, two pads
    y_pred = np.random.randn(1, 4, 8).astype("float32")
    loss(y_true, y_pred)
    ```
    """

    def __init__(self, from_logits=True, ignore_class=0, label_smoothing=0.0,
                 reduction="sum_over_batch_size",
                 name="masked_sparse_categorical_crossentropy", dtype=None):
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            log_probs = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        valid = None
        labels = y_true
        if self.ignore_class is not None:
            valid = ops.not_equal(y_true, self.ignore_class)
            labels = ops.where(valid, y_true, ops.zeros_like(y_true))
        nll = -ops.squeeze(
            ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1),
            axis=-1,
        )
        if self.label_smoothing:
            smooth = -ops.mean(log_probs, axis=-1)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth
        if valid is not None:
            nll = ops.where(valid, nll, ops.zeros_like(nll))
            keras.src.backend.set_keras_mask(nll, valid)
        return nll

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "label_smoothing": self.label_smoothing,
        }
