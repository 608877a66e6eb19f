"""Span decoding and the `span_exact_match` / `span_f1` metrics."""

import keras
from keras import ops


def best_spans(span_logits, max_answer_length=30):
    """Decodes the highest-scoring valid span of each example.

    Among all `(start, end)` with `start <= end < start + max_answer_length`,
    picks the one maximizing `start_logit[start] + end_logit[end]`.

    Args:
        span_logits: float `(batch, 2, length)` from the `qa_span` head.
        max_answer_length: int. Longest answer in tokens. Defaults to `30`.

    Returns:
        int32 `(batch, 2)`: `[start, end]` (inclusive) per example.

    Example:

    ```python
    spans = keraslm_qa.metrics.best_spans(model(token_ids), max_answer_length=20)
    ```
    """
    if int(max_answer_length) < 1:
        raise ValueError("`max_answer_length` must be >= 1. "
                         f"Received: max_answer_length={max_answer_length}")
    span_logits = ops.cast(span_logits, "float32")
    length = ops.shape(span_logits)[-1]
    scores = (ops.expand_dims(span_logits[:, 0], 2)
              + ops.expand_dims(span_logits[:, 1], 1))  # (batch, start, end)
    positions = ops.arange(length)
    offset = ops.expand_dims(positions, 0) - ops.expand_dims(positions, 1)
    allowed = ops.logical_and(offset >= 0, offset < max_answer_length)
    scores = ops.where(ops.expand_dims(allowed, 0), scores, -3e38)
    flat = ops.argmax(ops.reshape(scores, (ops.shape(scores)[0], -1)), axis=-1)
    flat = ops.cast(flat, "int32")
    length = ops.cast(length, "int32")
    return ops.stack([flat // length, flat % length], axis=-1)


class _SpanMetric(keras.metrics.Metric):
    def __init__(self, max_answer_length=30, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_answer_length = max_answer_length
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        gold = ops.cast(y_true, "int32")
        predicted = best_spans(y_pred, self.max_answer_length)
        values = ops.cast(self._score(gold, predicted), "float32")
        self.total.assign_add(ops.sum(values))
        self.count.assign_add(ops.cast(ops.shape(values)[0], "float32"))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "max_answer_length": self.max_answer_length}


@keras.saving.register_keras_serializable(package="keraslm_qa")
class SpanExactMatch(_SpanMetric):
    """Share of examples whose decoded span equals the gold span exactly.

    Example:

    ```python
    metric = keraslm.registry.metrics.build("span_exact_match")
    metric.update_state(np.array([[2, 4]]), span_logits)
    ```
    """

    def __init__(self, max_answer_length=30, name="span_exact_match", dtype=None):
        super().__init__(max_answer_length, name=name, dtype=dtype)

    def _score(self, gold, predicted):
        return ops.all(ops.equal(gold, predicted), axis=-1)


@keras.saving.register_keras_serializable(package="keraslm_qa")
class SpanF1(_SpanMetric):
    """Mean token-overlap F1 between decoded and gold spans (SQuAD's F1).

    Example:

    ```python
    metric = keraslm.registry.metrics.build("span_f1", max_answer_length=20)
    ```
    """

    def __init__(self, max_answer_length=30, name="span_f1", dtype=None):
        super().__init__(max_answer_length, name=name, dtype=dtype)

    def _score(self, gold, predicted):
        overlap = ops.maximum(
            ops.minimum(gold[:, 1], predicted[:, 1])
            - ops.maximum(gold[:, 0], predicted[:, 0]) + 1, 0)
        overlap = ops.cast(overlap, "float32")
        gold_length = ops.cast(gold[:, 1] - gold[:, 0] + 1, "float32")
        predicted_length = ops.cast(predicted[:, 1] - predicted[:, 0] + 1, "float32")
        return ops.divide_no_nan(2 * overlap, gold_length + predicted_length)
