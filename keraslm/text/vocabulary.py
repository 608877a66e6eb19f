"""Label vocabularies for classification and tagging."""

import collections
import json

from keraslm.registry import suggest


class UnknownLabelError(ValueError):
    """A label that the label vocabulary (built at training time) never saw."""


class LabelVocabulary:
    """Maps label strings to contiguous ids, in a stable order.

    Build it from the training labels (`LabelVocabulary.fit`), save it with
    the run, and encode evaluation labels with it: a label that training never
    saw is an `UnknownLabelError` naming the label, where it came from and the
    known labels.

    Args:
        labels: list of str. The labels, index = id.

    Example:

    ```python
    vocabulary = keraslm.text.LabelVocabulary.fit(["great", "other", "great"])
    vocabulary.labels                    # ['great', 'other']
    vocabulary.encode(["other"])         # [1]
    vocabulary.class_weights(["great", "great", "other"])   # {0: 0.75, 1: 1.5}
    ```
    """

    def __init__(self, labels):
        labels = [str(label) for label in labels]
        duplicates = [l for l, c in collections.Counter(labels).items() if c > 1]
        if duplicates:
            raise ValueError(
                f"Label vocabulary has duplicate labels: {duplicates}. "
                f"Expected each label once."
            )
        if not labels:
            raise ValueError("Label vocabulary is empty. Expected at least one label.")
        self.labels = labels
        self._index = {label: i for i, label in enumerate(labels)}

    @classmethod
    def fit(cls, labels, sort=True):
        """Collects the distinct labels (sorted, or in first-seen order)."""
        distinct = list(dict.fromkeys(str(l) for l in labels))
        return cls(sorted(distinct) if sort else distinct)

    def __len__(self):
        return len(self.labels)

    def __contains__(self, label):
        return str(label) in self._index

    def __repr__(self):
        return f"LabelVocabulary({self.labels!r})"

    def encode(self, labels, source=None, positions=None) -> list:
        """Label strings to ids.

        Args:
            labels: list of labels.
            source: str, optional. Where the labels come from (a file), for
                the error message.
            positions: list, optional. A location per label (row or line
                numbers) for the error message; defaults to the list index.

        Raises:
            UnknownLabelError: a label is not in the vocabulary.
        """
        ids = []
        for i, label in enumerate(labels):
            index = self._index.get(str(label))
            if index is None:
                where = positions[i] if positions is not None else f"index {i}"
                origin = f" in {source}" if source else ""
                hint = suggest(str(label), self.labels)
                raise UnknownLabelError(
                    f"Label {str(label)!r} ({where}{origin}) was never seen in "
                    f"training. Known labels ({len(self.labels)}): "
                    f"{', '.join(self.labels[:50])}"
                    f"{' ...' if len(self.labels) > 50 else ''}."
                    + (f" Did you mean {hint!r}?" if hint else "")
                )
            ids.append(index)
        return ids

    def decode(self, ids) -> list:
        """Ids to label strings."""
        return [self.labels[int(i)] for i in ids]

    def class_weights(self, labels) -> dict:
        """Balanced weights `n / (num_classes * count)`, for `fit(class_weight=...)`.

        Classes absent from `labels` get weight 1.0.
        """
        counts = collections.Counter(self.encode(labels))
        total = sum(counts.values())
        return {i: (total / (len(self) * counts[i]) if counts[i] else 1.0)
                for i in range(len(self))}

    def get_config(self) -> dict:
        return {"labels": list(self.labels)}

    def save(self, path):
        """Writes `{"labels": [...]}` as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.get_config(), f, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f)["labels"])
