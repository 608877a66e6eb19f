"""Entity-level precision, recall and F1 over BIO (IOB2) tag sequences.

Named-entity taggers are scored by the entities they find, not by their
tags: an entity is right when the prediction has an entity with exactly the
same first word, last word and type. These are the scores of conlleval and
of `seqeval.metrics` in its default (non-strict) mode (`precision_score`,
`recall_score`, `f1_score`, `classification_report`), which the tests
compare against.

Each word is tagged `O` (outside), `B-TYPE` (begins an entity) or `I-TYPE`
(inside one). Entities are read as conlleval reads them, so ill-formed
sequences (a model's predictions, IOB1 files) get the usual meaning: an
entity starts at `B-X`, or at an `I-X` after `O` or after another type, and
ends before the next `O`, `B-` or change of type. A tag of another form
(`X-PER`, `PER`) reads as `O`.

This module is the one implementation of those rules in keraslm: the `tag`
task (`keraslm.tasks.tag`) reports them when its labels are entity tags,
and the `keraslm-ner` plugin builds its task and metrics on them.

Example:

```python
from keraslm.evaluation import entity_metrics, entity_spans

entity_spans(["B-PER", "I-PER", "O", "I-LOC"])
# [('PER', 0, 1), ('LOC', 3, 3)]
report = entity_metrics([["B-PER", "I-PER", "O", "B-LOC"]],
                        [["B-PER", "I-PER", "O", "O"]])
report["micro"]["f1"], report["per_type"]["LOC"]["recall"]   # 0.667, 0.0
```
"""


def split_tag(tag):
    """The parts of one entity tag: `("O", None)`, `("B", TYPE)` or
    `("I", TYPE)`; None for a tag of another form.

    Example:

    ```python
    split_tag("B-PER")    # ('B', 'PER')
    split_tag("O")        # ('O', None)
    split_tag("b-PER")    # None (prefixes are upper case)
    ```
    """
    if tag == "O":
        return "O", None
    if not isinstance(tag, str):
        return None
    prefix, dash, kind = tag.partition("-")
    if prefix in ("B", "I") and dash and kind and kind.strip() == kind:
        return prefix, kind
    return None


def entity_spans(tags):
    """The entities of one sentence's tags: `[(type, first, last)]`, inclusive.

    Reads IOB2 (BIO), IOB1 and ill-formed sequences as conlleval and
    `seqeval.metrics.sequence_labeling.get_entities` do (see the module
    docstring); a tag that is not `O`, `B-TYPE` or `I-TYPE` counts as `O`.

    Args:
        tags: list of str. One sentence's tags.

    Returns:
        list of `(type, first, last)` tuples, in order.

    Example:

    ```python
    entity_spans(["B-PER", "I-PER", "B-PER", "I-LOC", "O"])
    # [('PER', 0, 1), ('PER', 2, 2), ('LOC', 3, 3)]
    ```
    """
    found, start, kind = [], None, None
    for index, tag in enumerate([*tags, "O"]):
        prefix, tag_kind = split_tag(tag) or ("O", None)
        if start is not None and (prefix != "I" or tag_kind != kind):
            found.append((kind, start, index - 1))
            start = kind = None
        if prefix != "O" and (prefix == "B" or start is None):
            start, kind = index, tag_kind
    return found


def is_entity_label_set(labels) -> bool:
    """Whether `labels` look like BIO/IOB2 entity tags: each is `O`,
    `B-TYPE` or `I-TYPE`, and at least one is not `O`.

    Example:

    ```python
    is_entity_label_set(["B-LOC", "I-LOC", "O"])   # True
    is_entity_label_set(["NOUN", "VERB"])          # False (part-of-speech tags)
    ```
    """
    parts = [split_tag(label) for label in labels]
    return bool(parts) and None not in parts and any(p != "O" for p, _ in parts)


def entity_counts(true_tag_sequences, predicted_tag_sequences) -> dict:
    """Per entity type: `{"correct", "predicted", "gold"}` entity counts.

    Args:
        true_tag_sequences: list of sentences, each a list of str tags.
        predicted_tag_sequences: list of sentences as long as the true ones.

    Returns:
        dict: `{type: {"correct": int, "predicted": int, "gold": int}}` for
        every type found in either, sorted by type.

    Raises:
        ValueError: the two are not lists of sentences of equal lengths.

    Example:

    ```python
    entity_counts([["B-PER", "O"]], [["B-PER", "B-LOC"]])
    # {'LOC': {'correct': 0, 'predicted': 1, 'gold': 0},
    #  'PER': {'correct': 1, 'predicted': 1, 'gold': 1}}
    ```
    """
    _check_sentences(true_tag_sequences, predicted_tag_sequences)
    counts = {}

    def count(kind):
        return counts.setdefault(kind, {"correct": 0, "predicted": 0, "gold": 0})

    for true, predicted in zip(true_tag_sequences, predicted_tag_sequences):
        gold = set(entity_spans(true))
        for entity in gold:
            count(entity[0])["gold"] += 1
        for entity in set(entity_spans(predicted)):
            count(entity[0])["predicted"] += 1
            if entity in gold:
                count(entity[0])["correct"] += 1
    return dict(sorted(counts.items()))


def entity_scores(counts) -> dict:
    """Precision, recall and F1 from per-type entity counts.

    Args:
        counts: dict. `{type: {"correct", "predicted", "gold"}}`, as
            `entity_counts` returns; types with no predicted and no gold
            entity are left out of the report.

    Returns:
        dict: `precision`, `recall`, `f1` (micro: over all entities),
        `micro`, `macro` (the unweighted mean over types) and `weighted`
        (by gold support), each `{precision, recall, f1}`; `per_type`:
        `{type: {precision, recall, f1, support}}` (seqeval's
        `classification_report` rows); `entities` (gold), `predicted_entities`
        and `correct_entities`. A score whose denominator is 0 is 0, as
        seqeval's (whose macro average of no types at all is NaN, here 0).
    """
    rows = {kind: c for kind, c in counts.items() if c["predicted"] or c["gold"]}

    def prf(correct, predicted, gold):
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        # As seqeval computes it (2PR / (P + R)), so the floats agree exactly.
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}

    per_type = {kind: {**prf(c["correct"], c["predicted"], c["gold"]),
                       "support": int(c["gold"])} for kind, c in rows.items()}
    total = {key: sum(c[key] for c in rows.values())
             for key in ("correct", "predicted", "gold")}
    micro = prf(total["correct"], total["predicted"], total["gold"])

    def average(weight):
        weights = {kind: weight(row) for kind, row in per_type.items()}
        scale = sum(weights.values())
        return {name: (sum(per_type[kind][name] * w for kind, w in weights.items()) / scale
                       if scale else 0.0) for name in ("precision", "recall", "f1")}

    return {**micro, "micro": micro,
            "macro": average(lambda row: 1.0), "weighted": average(lambda row: row["support"]),
            "per_type": per_type, "entities": int(total["gold"]),
            "predicted_entities": int(total["predicted"]),
            "correct_entities": int(total["correct"])}


def entity_metrics(true_tag_sequences, predicted_tag_sequences) -> dict:
    """Entity-level precision, recall and F1 (micro, macro, weighted, per type).

    An entity (exact first word, last word and type) is read from each
    sentence by `entity_spans`; the scores equal seqeval's default mode
    (`precision_score`, `recall_score`, `f1_score` and
    `classification_report(..., output_dict=True)`), i.e. conlleval's.

    Args:
        true_tag_sequences: list of sentences, each a list of str tags
            (`O`, `B-TYPE`, `I-TYPE`).
        predicted_tag_sequences: list of sentences, one per true sentence
            and of its length.

    Returns:
        dict: as `entity_scores`: `precision`, `recall`, `f1` (micro),
        `micro`/`macro`/`weighted` averages, `per_type` (`{type:
        {precision, recall, f1, support}}`), `entities`,
        `predicted_entities`, `correct_entities`.

    Raises:
        ValueError: the inputs are not lists of sentences, or a predicted
            sentence's length differs from its true sentence's.

    Example:

    ```python
    from keraslm.evaluation import entity_metrics

    report = entity_metrics(
        [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]],
        [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]])
    report["f1"]                          # 0.667 (2 of 3 right, 3 predicted)
    report["per_type"]["PER"]             # precision 1, recall 1, f1 1, support 1
    report["macro"]["f1"]                 # 0.556 (mean of PER 1, ORG 0.667, LOC 0)
    ```
    """
    return entity_scores(entity_counts(true_tag_sequences, predicted_tag_sequences))


def _check_sentences(true_tag_sequences, predicted_tag_sequences):
    for name, value in (("true_tag_sequences", true_tag_sequences),
                        ("predicted_tag_sequences", predicted_tag_sequences)):
        if isinstance(value, str) or any(isinstance(s, str) for s in value):
            raise ValueError(
                f"`{name}` must be a list of sentences, each a list of tags. Received "
                f"a list of str (one sentence? pass [tags]): {list(value)[:5]!r}")
    if len(true_tag_sequences) != len(predicted_tag_sequences):
        raise ValueError(
            f"`true_tag_sequences` and `predicted_tag_sequences` must hold the same "
            f"number of sentences. Received: {len(true_tag_sequences)} and "
            f"{len(predicted_tag_sequences)}.")
    for index, (true, predicted) in enumerate(zip(true_tag_sequences,
                                                  predicted_tag_sequences)):
        if len(true) != len(predicted):
            raise ValueError(
                f"Sentence {index} has {len(true)} true tags and {len(predicted)} "
                f"predicted tags. Expected one predicted tag per word.")
