"""Entity-level precision, recall and F1 (`entity_precision`, `entity_recall`,
`entity_f1`), as `keras.metrics.Metric`s.

An entity counts as found when the prediction has an entity with exactly the
same first word, last word and type: the scores of conlleval and of
`seqeval.metrics` in its default mode (`f1_score`, `classification_report`),
micro-averaged over the entities. Entities are read from IOB2 (or IOB1, or
ill-formed predicted) tag sequences by the rules of keraslm's
`keraslm.evaluation.entities.entity_spans` (the one implementation, which
`keraslm.evaluation.entity_metrics` and the `tag` and `ner` evaluations
use): these metrics count the same entities with `keras.ops` so that they
run inside a compiled model, and give their scores through
`keraslm.evaluation.entities.entity_scores` (the tests check both against
`entity_spans` and seqeval).

The metrics take tag ids, `(batch, length)`, over a fixed label list (the
task's label vocabulary): `y_true` is negative (-100) where there is no word
(padding, non-first subwords), `y_pred` tag ids or logits
`(batch, length, num_labels)` (their arg-max). Positions where `y_true` is
negative, or `sample_weight` is 0, are dropped and the remaining words of
each row read as one sentence. Everything is `keras.ops` (no Python loop),
so they also work inside `model.compile(metrics=...)` and on any backend.

Example:

```python
import keraslm

labels = ["B-LOC", "B-PER", "I-PER", "O"]
f1 = keraslm.registry.metrics.build("entity_f1", labels=labels)
f1.update_state([[1, 2, 3, 0]], [[1, 2, 3, 3]])   # PER found, LOC missed
float(f1.result())        # 0.6667 (precision 1, recall 0.5)
f1.scores()["per_type"]["PER"]["f1"]   # 1.0
```
"""

import keras
import numpy as np
from keras import ops

from keraslm.evaluation.entities import entity_scores, split_tag

_OUTSIDE, _BEGIN, _INSIDE = 0, 1, 2


class EntityCounts(keras.metrics.Metric):
    """Counts of gold, predicted and correct entities per type.

    The base of `EntityPrecision`, `EntityRecall` and `EntityF1`; each gives
    one number as `result()`, and `scores()` gives all of them with the
    scores per type.

    Args:
        labels: list of str. The tag of each id: `O`, `B-TYPE` or `I-TYPE`.
    """

    def __init__(self, labels, name="entity_counts", dtype=None):
        super().__init__(name=name, dtype=dtype)
        labels = [str(label) for label in labels]
        malformed = [label for label in labels if split_tag(label) is None]
        if not labels or malformed:
            raise ValueError(
                "`labels` must be a non-empty list of 'O', 'B-TYPE' and 'I-TYPE' tags. "
                f"Received: labels={labels!r}"
                + (f" (malformed: {malformed!r})" if malformed else ""))
        self.labels = labels
        parts = [split_tag(label) for label in labels]
        self.types = sorted({kind for _, kind in parts if kind is not None})
        codes = {"O": _OUTSIDE, "B": _BEGIN, "I": _INSIDE}
        outside_type = len(self.types)  # 'O' gets a type of its own
        self._prefix_of = np.array([codes[p] for p, _ in parts], "int32")
        self._type_of = np.array([self.types.index(k) if k is not None else outside_type
                                  for _, k in parts], "int32")
        shape = (len(self.types),)
        self.true_positives = self.add_variable(shape=shape, initializer="zeros",
                                                name="true_positives")
        self.predicted = self.add_variable(shape=shape, initializer="zeros",
                                           name="predicted")
        self.actual = self.add_variable(shape=shape, initializer="zeros", name="actual")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.convert_to_tensor(y_true), "int32")
        y_pred = ops.convert_to_tensor(y_pred)
        if "float" in str(y_pred.dtype):  # logits or scores
            y_pred = ops.argmax(y_pred, axis=-1)
        y_pred = ops.cast(y_pred, "int32")
        if len(y_true.shape) == 1:  # one sentence
            y_true, y_pred = y_true[None], y_pred[None]
        valid = ops.logical_and(ops.greater_equal(y_true, 0),
                                ops.less(y_true, len(self.labels)))
        if sample_weight is not None:
            weight = ops.reshape(ops.convert_to_tensor(sample_weight), ops.shape(y_true))
            valid = ops.logical_and(valid, ops.greater(weight, 0))
        # The words of each row first, in order (padding and subwords after).
        length = ops.shape(y_true)[1]
        positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        order = ops.argsort(ops.where(valid, positions, positions + length), axis=-1)
        valid = ops.take_along_axis(valid, order, axis=-1)
        gold = self._chunks(ops.take_along_axis(y_true, order, axis=-1), valid)
        pred = self._chunks(ops.take_along_axis(y_pred, order, axis=-1), valid)
        gold_type, gold_inside, gold_start, gold_end = gold
        pred_type, pred_inside, pred_start, pred_end = pred
        # A gold entity is found iff, on each of its words, the prediction is
        # inside an entity of its type that starts and ends where it does.
        agree = ops.logical_and(
            ops.logical_and(ops.equal(gold_start, pred_start), ops.equal(gold_end, pred_end)),
            ops.logical_and(pred_inside, ops.equal(gold_type, pred_type)))
        wrong = ops.reshape(ops.logical_and(gold_inside, ops.logical_not(agree)), (-1,))
        gold_type = ops.reshape(gold_type, (-1,))
        gold_start = ops.reshape(gold_start, (-1,))
        # Number the gold entities; count each entity with a wrong word once.
        entity = ops.cumsum(ops.cast(gold_start, "int32"))
        missing = ops.shape(entity)[0] + 1
        keys = ops.where(wrong, entity, missing)
        by_entity = ops.argsort(keys)
        keys = ops.take(keys, by_entity)
        first = ops.concatenate([ops.ones((1,), "bool"),
                                 ops.not_equal(keys[1:], keys[:-1])])[:ops.shape(keys)[0]]
        first = ops.logical_and(first, ops.less(keys, missing))
        wrong_entities = self._per_type(first, ops.take(gold_type, by_entity))
        actual = self._per_type(gold_start, gold_type)
        predicted = self._per_type(ops.reshape(pred_start, (-1,)),
                                   ops.reshape(pred_type, (-1,)))
        self.actual.assign_add(actual)
        self.predicted.assign_add(predicted)
        self.true_positives.assign_add(actual - wrong_entities)

    def _chunks(self, ids, valid):
        """Per word: type, inside an entity, an entity starts, an entity ends."""
        ids = ops.clip(ids, 0, len(self.labels) - 1)
        outside_type = len(self.types)
        prefix = ops.where(valid, ops.take(self._prefix_of, ids), _OUTSIDE)
        kind = ops.where(valid, ops.take(self._type_of, ids), outside_type)
        prefix_pad = ops.zeros_like(prefix[:, :1])
        kind_pad = ops.full_like(kind[:, :1], outside_type)
        previous_kind = ops.concatenate([kind_pad, kind[:, :-1]], axis=1)
        next_prefix = ops.concatenate([prefix[:, 1:], prefix_pad], axis=1)
        next_kind = ops.concatenate([kind[:, 1:], kind_pad], axis=1)
        inside = ops.not_equal(prefix, _OUTSIDE)
        start = ops.logical_and(inside, ops.logical_or(
            ops.equal(prefix, _BEGIN), ops.not_equal(previous_kind, kind)))
        end = ops.logical_and(inside, ops.logical_or(
            ops.not_equal(next_prefix, _INSIDE), ops.not_equal(next_kind, kind)))
        return kind, inside, start, end

    def _per_type(self, flags, kind):
        counts = ops.segment_sum(ops.cast(flags, "float32"), kind,
                                 num_segments=len(self.types) + 1)
        return ops.cast(counts[:len(self.types)], self.dtype)

    def reset_state(self):
        for variable in (self.true_positives, self.predicted, self.actual):
            variable.assign(ops.zeros_like(variable))

    def _micro(self):
        true_positives = ops.sum(self.true_positives)
        return true_positives, ops.sum(self.predicted), ops.sum(self.actual)

    def scores(self) -> dict:
        """Precision, recall and F1 over all entities, and per type.

        Returns:
            dict: `keraslm.evaluation.entities.entity_scores` of the counts:
            `precision`, `recall`, `f1` (micro), `micro`/`macro`/`weighted`
            averages, `entities` (gold), `predicted_entities`,
            `correct_entities`, and `per_type`: `{type: {"precision",
            "recall", "f1", "support"}}` for the types that occur in the
            gold or the predicted tags (seqeval's `classification_report`
            rows). A score whose denominator is 0 is 0.
        """
        true_positives, predicted, actual = (
            np.asarray(ops.convert_to_numpy(v), "float64")
            for v in (self.true_positives, self.predicted, self.actual))
        return entity_scores({
            kind: {"correct": int(tp), "predicted": int(pred), "gold": int(gold)}
            for kind, tp, pred, gold in zip(self.types, true_positives, predicted, actual)})

    def get_config(self):
        return {**super().get_config(), "labels": list(self.labels)}


@keras.saving.register_keras_serializable(package="keraslm_ner")
class EntityPrecision(EntityCounts):
    """Share of predicted entities that are gold entities (span and type).

    Example:

    ```python
    metric = keraslm.registry.metrics.build("entity_precision", labels=labels)
    ```
    """

    def __init__(self, labels, name="entity_precision", dtype=None):
        super().__init__(labels, name=name, dtype=dtype)

    def result(self):
        true_positives, predicted, _ = self._micro()
        return ops.divide_no_nan(true_positives, predicted)


@keras.saving.register_keras_serializable(package="keraslm_ner")
class EntityRecall(EntityCounts):
    """Share of gold entities that are predicted (span and type).

    Example:

    ```python
    metric = keraslm.registry.metrics.build("entity_recall", labels=labels)
    ```
    """

    def __init__(self, labels, name="entity_recall", dtype=None):
        super().__init__(labels, name=name, dtype=dtype)

    def result(self):
        true_positives, _, actual = self._micro()
        return ops.divide_no_nan(true_positives, actual)


@keras.saving.register_keras_serializable(package="keraslm_ner")
class EntityF1(EntityCounts):
    """Micro F1 of entities (span and type): seqeval's `f1_score`.

    Example:

    ```python
    f1 = keraslm.registry.metrics.build("entity_f1", labels=["B-PER", "I-PER", "O"])
    f1.update_state([[0, 1, 2]], [[0, 1, 2]])
    float(f1.result())    # 1.0
    ```
    """

    def __init__(self, labels, name="entity_f1", dtype=None):
        super().__init__(labels, name=name, dtype=dtype)

    def result(self):
        true_positives, predicted, actual = self._micro()
        return ops.divide_no_nan(2 * true_positives, predicted + actual)
