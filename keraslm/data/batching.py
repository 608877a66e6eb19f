"""What every task pipeline shares: `TaskData`, tokenizing and batching.

`TaskData` is what each pipeline builder returns (the batch format is
described in `keraslm.data`); the helpers below tokenize texts in parallel
`tf.data` batches, report truncation, wrap rows in their special tokens and
pad them into batches.
"""

import dataclasses
import math
import warnings

import numpy as np
import tensorflow as tf

from keraslm.data.errors import DataError, TruncationWarning
from keraslm.text import special_tokens as st
from keraslm.text.tokenizer import check_texts
from keraslm.text.vocabulary import LabelVocabulary

AUTOTUNE = tf.data.AUTOTUNE
IGNORE_INDEX = st.IGNORE_INDEX
PADDING_CHOICES = ("max_length", "longest")


@dataclasses.dataclass
class TaskData:
    """A task dataset and what was learned building it.

    Attributes:
        dataset: `tf.data.Dataset` of `(inputs, labels)` batches: `inputs` a
            dict of exactly the model inputs, labels -100 where nothing is
            scored (see `keraslm.data`).
        num_examples: int. Examples (or packed windows) per epoch.
        num_truncated: int. Examples longer than the maximum, truncated.
        num_tokens: int. Tokens before truncation and padding.
        batch_size: int.
        label_vocabulary: `LabelVocabulary` or None.
        class_weights: dict or None. `{class_id: weight}` for
            `model.fit(class_weight=...)` (classification).
    """

    dataset: tf.data.Dataset
    num_examples: int
    num_truncated: int = 0
    num_tokens: int = 0
    batch_size: int = 32
    label_vocabulary: LabelVocabulary | None = None
    class_weights: dict | None = None

    @property
    def steps_per_epoch(self) -> int:
        """Batches per epoch (the last one may be smaller)."""
        return math.ceil(self.num_examples / self.batch_size)

    def __iter__(self):
        return iter(self.dataset)


def tokenize_texts(tokenizer, texts, batch_size=2048) -> tf.RaggedTensor:
    """Tokenizes a list of strings into a `[len(texts), None]` ragged tensor.

    Runs in parallel `tf.data` batches; the result holds every example.
    """
    texts = check_strings(texts, "texts")
    dataset = tf.data.Dataset.from_tensor_slices(
        tf.constant(texts, dtype=tf.string, shape=[len(texts)])
    ).batch(batch_size).map(tokenizer.tokenize, num_parallel_calls=AUTOTUNE,
                            deterministic=True)
    parts = list(dataset)
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def check_strings(texts, what):
    """`texts` as a list of str, or a `DataError` naming `what`."""
    return check_texts(texts, what, error=DataError)


def check_positive(**values):
    """Raises ValueError unless every keyword argument is a positive integer."""
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: "
                             f"{name}={value!r}.")


def report_truncation(lengths, maximum, what, unit="tokens",
                      argument="sequence_length"):
    """Warns with the number of sequences longer than `maximum`."""
    lengths = np.asarray(lengths)
    over = int(np.sum(lengths > maximum))
    if over:
        warnings.warn(
            f"{over} of {len(lengths)} {what} are longer than {maximum} {unit} "
            f"(longest: {int(lengths.max())}) and were truncated. Raise "
            f"`{argument}` to keep them whole.",
            TruncationWarning, stacklevel=3,
        )
    return over


def wrap(ragged, length, start_id=None, end_id=None):
    """Truncates rows to fit `length` with the optional start/end ids added."""
    room = length - (start_id is not None) - (end_id is not None)
    ragged = ragged[:, :room]
    parts = []
    rows = ragged.nrows()
    if start_id is not None:
        parts.append(tf.fill([rows, 1], tf.cast(start_id, ragged.dtype)))
    parts.append(ragged)
    if end_id is not None:
        parts.append(tf.fill([rows, 1], tf.cast(end_id, ragged.dtype)))
    return tf.concat(parts, axis=1) if len(parts) > 1 else ragged


def finish(dataset, *, num_examples, batch_size, shuffle, seed, cache,
           padded_shapes, padding_values, bucket_boundaries, length_key,
           drop_remainder, to_model_inputs):
    """Caches, shuffles, pads into batches (or length buckets), maps each
    batch through `to_model_inputs` and prefetches a dataset of rows."""
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(num_examples, seed=seed,
                                  reshuffle_each_iteration=True)
    if bucket_boundaries:
        boundaries = sorted(int(b) for b in bucket_boundaries)
        dataset = dataset.bucket_by_sequence_length(
            element_length_func=lambda e: tf.shape(e[length_key])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    else:
        dataset = dataset.padded_batch(batch_size, padded_shapes=padded_shapes,
                                       padding_values=padding_values,
                                       drop_remainder=drop_remainder)
    dataset = dataset.map(to_model_inputs, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def rows_dataset(columns):
    """A dataset of dict elements from ragged (rows) and dense (scalars) columns."""
    tensors = {}
    for name, value in columns.items():
        if isinstance(value, tf.RaggedTensor):
            tensors[name] = (tf.convert_to_tensor(value.flat_values),
                             tf.convert_to_tensor(value.row_splits))
        else:
            tensors[name] = tf.convert_to_tensor(value)
    size = next(iter(columns.values())).shape[0]

    def row(i):
        element = {}
        for name, value in tensors.items():
            if isinstance(value, tuple):
                values, splits = value
                element[name] = values[splits[i]:splits[i + 1]]
            else:
                element[name] = value[i]
        return element

    return tf.data.Dataset.range(size).map(row, num_parallel_calls=AUTOTUNE,
                                           deterministic=True)


def check_padding(padding):
    """Raises ValueError unless `padding` is one of `PADDING_CHOICES`."""
    if padding not in PADDING_CHOICES:
        raise ValueError(f"Unknown padding. Received: padding={padding!r}. "
                         f"Expected one of {list(PADDING_CHOICES)}.")
