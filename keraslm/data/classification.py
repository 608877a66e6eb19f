"""Sequence classification: `[CLS] text [SEP]` rows with one label each.

Example:

```python
from keraslm import data, text

train = data.read_table("../shared/data/reviews/train.csv")
tokenizer = text.WordPieceTokenizer.train(train.texts, vocabulary_size=2000)
task = data.classification_dataset(train.texts, train.labels, tokenizer)
inputs, label_ids = next(iter(task.dataset))   # label_ids: shape (32,)
```
"""

import numpy as np
import tensorflow as tf

from keraslm.data.batching import (
    TaskData, check_padding, check_positive, check_strings, finish,
    report_truncation, rows_dataset, tokenize_texts, wrap,
)
from keraslm.data.errors import DataError
from keraslm.text.vocabulary import LabelVocabulary


def classification_dataset(texts, labels, tokenizer, *, label_vocabulary=None,
                           sequence_length=128, batch_size=32, shuffle=True,
                           seed=0, cache=True, padding="max_length",
                           bucket_boundaries=None, drop_remainder=False,
                           source=None, positions=None) -> TaskData:
    """`[CLS] text [SEP]` sequences with integer labels.

    Args:
        texts: list of str.
        labels: list of label strings, one per text.
        tokenizer: a `keraslm.text.Tokenizer`.
        label_vocabulary: `LabelVocabulary` or None. None builds it from
            `labels` (training); pass the training one for evaluation data,
            where an unseen label is an `UnknownLabelError`.
        sequence_length: int. Longer texts are truncated (and counted).
            Defaults to `128`.
        batch_size: int. Defaults to `32`.
        shuffle, seed, cache, drop_remainder: see `causal_lm_dataset`.
        padding: str. `"max_length"` (static shapes, default) or
            `"longest"` (pad each batch to its longest sequence).
        bucket_boundaries: list of int, optional. Batch sequences of similar
            length together (`tf.data.Dataset.bucket_by_sequence_length`);
            implies `"longest"` padding within a bucket.
        source: str, optional. File name for error messages.
        positions: list, optional. Line of each example, for error messages.

    Returns:
        `TaskData` with `label_vocabulary` and balanced `class_weights`;
        batches are `({"token_ids": ...}, label_ids)`, the ids of shape
        `[batch, sequence_length]` (or the batch's longest) and the labels
        of shape `[batch]`.

    Example:

    ```python
    train = data.read_table("../shared/data/reviews/train.csv")
    task = classification_dataset(train.texts, train.labels, tokenizer,
                                  source=train.path, positions=train.lines)
    model.fit(task.dataset, class_weight=task.class_weights)
    ```
    """
    check_positive(sequence_length=sequence_length, batch_size=batch_size)
    texts = check_strings(texts, "texts")
    labels = list(labels)
    if len(labels) != len(texts):
        raise DataError(f"`texts` and `labels` must have the same length. Received: "
                        f"{len(texts)} texts and {len(labels)} labels.")
    if label_vocabulary is None:
        label_vocabulary = LabelVocabulary.fit(labels)
    label_ids = np.asarray(label_vocabulary.encode(
        labels, source=source,
        positions=[f"line {p}" for p in positions] if positions is not None else None),
        dtype=np.int32)
    ids = tokenize_texts(tokenizer, texts)
    lengths = ids.row_lengths().numpy()
    truncated = report_truncation(lengths + 2, sequence_length, "texts")
    ids = wrap(ids, sequence_length, tokenizer.cls_id, tokenizer.sep_id)
    dataset = rows_dataset({"token_ids": ids, "label": label_ids})

    def to_model_inputs(batch):
        return {"token_ids": batch["token_ids"]}, batch["label"]

    shapes = {"token_ids": tf.TensorShape(
        [sequence_length if padding == "max_length" else None]),
              "label": tf.TensorShape([])}
    check_padding(padding)
    dataset = finish(
        dataset, num_examples=len(texts), batch_size=batch_size, shuffle=shuffle,
        seed=seed, cache=cache, padded_shapes=shapes,
        padding_values={"token_ids": tokenizer.pad_id, "label": 0},
        bucket_boundaries=bucket_boundaries, length_key="token_ids",
        drop_remainder=drop_remainder, to_model_inputs=to_model_inputs)
    return TaskData(dataset, num_examples=len(texts), num_truncated=truncated,
                    num_tokens=int(lengths.sum()), batch_size=batch_size,
                    label_vocabulary=label_vocabulary,
                    class_weights=label_vocabulary.class_weights(labels))
