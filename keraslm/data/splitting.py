"""Deterministic train/validation splits of parallel lists.

Example:

```python
from keraslm import data

reviews = data.read_table("../shared/data/reviews/train.csv")
(texts, labels), (valid_texts, valid_labels) = data.train_validation_split(
    reviews.texts, reviews.labels, validation_fraction=0.1, seed=0)
```
"""

import numpy as np

from keraslm.data.errors import DataError


def train_validation_split(*columns, validation_fraction=0.1, seed=0,
                           group_duplicates=True):
    """Deterministic split of parallel lists into train and validation parts.

    The same inputs, fraction and seed always give the same split (a seeded
    permutation); both parts keep the original order. With
    `group_duplicates`, examples whose first column is identical (duplicate
    reviews, repeated lines) land on the same side, so validation never
    scores an example that training saw.

    Args:
        *columns: lists of equal length (texts, labels, ...).
        validation_fraction: float in (0, 1). Defaults to `0.1`.
        seed: int. Defaults to `0`.
        group_duplicates: bool. Defaults to `True`.

    Returns:
        `(train_columns, validation_columns)`, each a tuple of lists (or a
        single list when one column was given).

    Example:

    ```python
    (train_x, train_y), (valid_x, valid_y) = train_validation_split(
        texts, labels, validation_fraction=0.1, seed=0)
    ```
    """
    if not columns:
        raise ValueError("`train_validation_split` needs at least one list.")
    columns = [list(c) for c in columns]
    size = len(columns[0])
    for i, column in enumerate(columns):
        if len(column) != size:
            raise ValueError(f"All columns must have the same length. Received: "
                             f"column 0 has {size} items, column {i} has {len(column)}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"`validation_fraction` must be in (0, 1). Received: "
                         f"validation_fraction={validation_fraction}.")
    count = int(round(size * validation_fraction))
    if count < 1 or count >= size:
        raise DataError(
            f"Cannot split {size} examples with validation_fraction="
            f"{validation_fraction}: it gives {count} validation examples. "
            f"Expected at least one example on each side; provide more data or a "
            f"validation file.")
    keys = columns[0] if group_duplicates else range(size)
    groups = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    groups = list(groups.values())
    order = np.random.default_rng(seed).permutation(len(groups))
    is_valid = np.zeros(size, dtype=bool)
    taken = 0
    for g in order:
        if taken >= count:
            break
        is_valid[groups[g]] = True
        taken += len(groups[g])
    if taken >= size:
        raise DataError(
            f"Cannot split {size} examples: they are copies of "
            f"{len(groups)} distinct values. Provide a validation file.")
    train = tuple([x for x, v in zip(c, is_valid) if not v] for c in columns)
    valid = tuple([x for x, v in zip(c, is_valid) if v] for c in columns)
    if len(columns) == 1:
        return train[0], valid[0]
    return train, valid
