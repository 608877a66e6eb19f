"""`tf.data` pipelines for every task.

Each builder tokenizes its examples once (in parallel `tf.data` batches),
reports sequences longer than the maximum (truncated, with a
`TruncationWarning` and the count in the result), and returns a `TaskData`
whose `dataset` yields `(x, y, sample_weight)` batches ready for
`model.fit`:

| task                 | x                                                    | y (ignored = -100)          |
|----------------------|------------------------------------------------------|-----------------------------|
| causal LM            | `token_ids`, `padding_mask`                          | next token ids              |
| masked LM            | `token_ids` (masked), `padding_mask`                 | original ids at masked pos. |
| classification       | `token_ids`, `padding_mask`                          | label id (no sample_weight) |
| token classification | `token_ids`, `padding_mask`                          | tag id on first subwords    |
| seq2seq              | `encoder_token_ids`, `encoder_padding_mask`, `decoder_token_ids`, `decoder_padding_mask` | next target ids |

`sample_weight` is 1.0 exactly where `y != -100`. Use either it or
`keras.losses.SparseCategoricalCrossentropy(ignore_class=-100)`.

Example:

```python
from keraslm import data, text

lines = data.read_text("../shared/data/shakespeare/train.txt")
tokenizer = text.WordPieceTokenizer.train(lines[:5000], vocabulary_size=1000)
lm = data.causal_lm_dataset(lines, tokenizer, sequence_length=128, batch_size=32)
x, y, sample_weight = next(iter(lm.dataset))
x["token_ids"].shape            # (32, 128)
```
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
        dataset: `tf.data.Dataset` of `(x, y, sample_weight)` (or `(x, y)` for
            classification) batches.
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


# ----------------------------------------------------------------- helpers
def tokenize_texts(tokenizer, texts, batch_size=2048) -> tf.RaggedTensor:
    """Tokenizes a list of strings into a `[len(texts), None]` ragged tensor.

    Runs in parallel `tf.data` batches; the result holds every example.
    """
    texts = _check_strings(texts, "texts")
    dataset = tf.data.Dataset.from_tensor_slices(
        tf.constant(texts, dtype=tf.string, shape=[len(texts)])
    ).batch(batch_size).map(tokenizer.tokenize, num_parallel_calls=AUTOTUNE,
                            deterministic=True)
    parts = list(dataset)
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


def _check_strings(texts, what):
    return check_texts(texts, what, error=DataError)


def _check_positive(**values):
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: "
                             f"{name}={value!r}.")


def _report_truncation(lengths, maximum, what, unit="tokens",
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


def _wrap(ragged, length, start_id=None, end_id=None):
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


def _finish(dataset, *, num_examples, batch_size, shuffle, seed, cache,
            padded_shapes, padding_values, bucket_boundaries, length_key,
            drop_remainder, to_model_inputs):
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


def _rows_dataset(columns):
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


def _check_padding(padding):
    if padding not in PADDING_CHOICES:
        raise ValueError(f"Unknown padding. Received: padding={padding!r}. "
                         f"Expected one of {list(PADDING_CHOICES)}.")


def _mask_and_weights(token_ids, labels):
    padding_mask = tf.not_equal(token_ids, st.PAD_ID)
    sample_weight = tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)
    return padding_mask, sample_weight


def _pack(ids, window):
    """Concatenates rows and cuts windows of `window` ids, the last one padded."""
    stream = ids.flat_values.numpy()
    count = max(1, math.ceil(len(stream) / window))
    padded = np.full(count * window, st.PAD_ID, dtype=np.int32)
    padded[: len(stream)] = stream
    return padded.reshape(count, window), len(stream)


# ---------------------------------------------------------------- causal LM
def causal_lm_dataset(texts, tokenizer, *, sequence_length=128, batch_size=32,
                      shuffle=True, seed=0, add_bos=False, cache=True,
                      drop_remainder=False, random_offsets=False,
                      stride=None) -> TaskData:
    """Packed next-token prediction windows.

    Every text is tokenized and followed by `[SEP]` (eos); all ids are
    concatenated and cut into contiguous windows of `sequence_length + 1`
    ids, each window overlapping the next by one id so every id is predicted
    exactly once. Nothing is truncated or dropped: the last window is padded
    (padding has label -100).

    Two options change where windows start:

    - `random_offsets=True` (training): each pass over the data first
      rotates the id stream by an offset in `[0, sequence_length)` drawn
      from `seed` and the pass number, so the window boundaries move from
      one epoch to the next instead of the model seeing the same windows
      every epoch. Each pass predicts every id once but one (the id at the
      offset opens the rotated stream; the stream's first id, wrapped behind
      its last, is predicted instead). The dataset then repeats forever, a
      new offset each pass, batches running on across passes (all full),
      and the same `seed` gives the same batches (a resumed run skips what
      it has done): take `steps_per_epoch` batches per epoch.
    - `stride` (evaluation): windows start every `stride` ids instead of
      every `sequence_length`; a window's first `sequence_length - stride`
      labels were already scored by the window before it and are masked
      (-100), so every id is still predicted exactly once, now with at least
      `sequence_length - stride` ids of context (the usual sliding-window
      perplexity). Costs `sequence_length / stride` times the compute.

    Args:
        texts: list of str. Documents (lines, blocks, ...).
        tokenizer: a `keraslm.text.Tokenizer`.
        sequence_length: int. Model input length. Defaults to `128`.
        batch_size: int. Defaults to `32`.
        shuffle: bool. Shuffle windows each epoch. Defaults to `True`.
        seed: int. Shuffle (and offset) seed. Defaults to `0`.
        add_bos: bool. Start every text with `[CLS]` (bos). Defaults to `False`.
        cache: bool. Cache the windows (fixed windows only; moving ones
            are cut anew each pass). Defaults to `True`.
        drop_remainder: bool. Drop the last partial batch (static batch
            dimension). Defaults to `False`.
        random_offsets: bool. Move the window boundaries each pass (see
            above). Defaults to `False`.
        stride: int or None. Distance between window starts, in
            `[1, sequence_length]`; None is `sequence_length` (no overlap).

    Returns:
        `TaskData`; batches are `({"token_ids", "padding_mask"}, labels,
        sample_weight)` of shape `[batch, sequence_length]`.

    Example:

    ```python
    lm = causal_lm_dataset(lines, tokenizer, sequence_length=64, batch_size=8)
    x, y, w = next(iter(lm.dataset))
    # Evaluation in which every id has at least 48 ids of context:
    scored = causal_lm_dataset(lines, tokenizer, sequence_length=64,
                               shuffle=False, stride=16)
    ```
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size)
    if stride is None:
        stride = sequence_length
    if (not isinstance(stride, (int, np.integer)) or isinstance(stride, bool)
            or not 1 <= stride <= sequence_length):
        raise ValueError(f"`stride` must be an integer in [1, sequence_length="
                         f"{sequence_length}] or None. Received: stride={stride!r}")
    if random_offsets and stride != sequence_length:
        raise ValueError("`random_offsets` (training) and an overlapping `stride` "
                         "(evaluation) do not go together. Received: "
                         f"random_offsets=True, stride={stride}")
    ids = tokenize_texts(tokenizer, texts)
    ids = _wrap(ids, np.iinfo(np.int32).max,
                start_id=tokenizer.bos_id if add_bos else None, end_id=tokenizer.eos_id)
    stream = ids.flat_values.numpy()
    if len(stream) < 2:
        raise DataError(
            f"Causal LM data holds {len(stream)} token(s) after tokenization. "
            f"Expected at least 2 (an input and its next token)."
        )

    def to_model_inputs(window, first_scored):
        token_ids = window[:, :-1]
        labels = window[:, 1:]
        labels = tf.where(tf.equal(labels, st.PAD_ID), IGNORE_INDEX, labels)
        already_scored = tf.range(sequence_length)[None, :] < first_scored[:, None]
        labels = tf.where(already_scored, IGNORE_INDEX, labels)
        padding_mask, weights = _mask_and_weights(token_ids, labels)
        return {"token_ids": token_ids, "padding_mask": padding_mask}, labels, weights

    if random_offsets:
        dataset, count = _rotating_windows(stream, sequence_length, seed, shuffle)
    else:
        windows, first_scored = _strided_windows(stream, sequence_length, stride)
        count = len(windows)
        dataset = tf.data.Dataset.from_tensor_slices((windows, first_scored))
        if cache:
            dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(to_model_inputs, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    return TaskData(dataset, num_examples=count, num_tokens=len(stream),
                    batch_size=batch_size)


def _strided_windows(stream, sequence_length, stride):
    """Windows of `sequence_length + 1` ids starting every `stride` ids, and
    for each the number of leading labels an earlier window already scored."""
    extra = max(0, len(stream) - 1 - sequence_length)
    count = 1 + math.ceil(extra / stride)
    padded = np.full((count - 1) * stride + sequence_length + 1, st.PAD_ID,
                     dtype=np.int32)
    padded[: len(stream)] = stream
    starts = np.arange(count) * stride
    windows = padded[starts[:, None] + np.arange(sequence_length + 1)[None, :]]
    first_scored = np.full(count, sequence_length - stride, dtype=np.int32)
    first_scored[0] = 0
    return windows, first_scored


def _rotating_windows(stream, sequence_length, seed, shuffle):
    """An endless dataset of windows, the stream rotated by a new offset each
    pass (drawn from `seed` and the pass number, so it is reproducible)."""
    count = math.ceil((len(stream) - 1) / sequence_length)
    length = count * sequence_length + 1
    stream = tf.constant(stream, dtype=tf.int32)
    positions = (tf.range(count)[:, None] * sequence_length
                 + tf.range(sequence_length + 1)[None, :])

    def one_pass(epoch):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
        offset = tf.random.stateless_uniform([], epoch_seed, maxval=sequence_length,
                                             dtype=tf.int32)
        rotated = tf.roll(stream, -offset, axis=0)
        padded = tf.pad(rotated, [[0, length - tf.shape(rotated)[0]]],
                        constant_values=st.PAD_ID)
        windows = tf.gather(padded, positions)
        if shuffle:
            order = tf.argsort(tf.random.stateless_uniform(
                [count], epoch_seed + tf.constant([0, 1 << 32], tf.int64)))
            windows = tf.gather(windows, order)
        return tf.data.Dataset.from_tensor_slices(
            (windows, tf.zeros([count], tf.int32)))

    return tf.data.Dataset.range(np.iinfo(np.int64).max).flat_map(one_pass), count


# ---------------------------------------------------------------- masked LM
def mask_tokens(token_ids, seed, *, vocabulary_size, mask_rate=0.15,
                mask_token_rate=0.8, random_token_rate=0.1,
                mask_id=st.MASK_ID, unmaskable_ids=(st.PAD_ID, st.CLS_ID, st.SEP_ID),
                first_random_id=st.NUM_SPECIAL_TOKENS):
    """BERT masking of a `[batch, length]` id tensor, reproducible from `seed`.

    Each maskable position (not padding, `[CLS]` or `[SEP]`) is selected with
    probability `mask_rate`; a selected id becomes `[MASK]` with probability
    `mask_token_rate`, a random non-special id with `random_token_rate`, and
    stays unchanged otherwise.

    Args:
        token_ids: int tensor `[batch, length]`.
        seed: int tensor of shape `[2]` (stateless random seed).

    Returns:
        `(masked_ids, labels, selected)`: labels hold the original id at
        selected positions and -100 elsewhere; `selected` is a bool tensor.
    """
    token_ids = tf.convert_to_tensor(token_ids)
    maskable = tf.ones_like(token_ids, dtype=tf.bool)
    for special in unmaskable_ids:
        maskable &= tf.not_equal(token_ids, special)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    shape = tf.shape(token_ids)
    selected = maskable & (tf.random.stateless_uniform(shape, seeds[0]) < mask_rate)
    action = tf.random.stateless_uniform(shape, seeds[1])
    to_mask = selected & (action < mask_token_rate)
    to_random = selected & (action >= mask_token_rate) & (
        action < mask_token_rate + random_token_rate)
    random_ids = tf.random.stateless_uniform(
        shape, seeds[2], minval=first_random_id, maxval=vocabulary_size,
        dtype=token_ids.dtype)
    masked = tf.where(to_mask, tf.cast(mask_id, token_ids.dtype), token_ids)
    masked = tf.where(to_random, random_ids, masked)
    labels = tf.where(selected, token_ids, tf.cast(IGNORE_INDEX, token_ids.dtype))
    return masked, labels, selected


def masked_lm_dataset(texts, tokenizer, *, sequence_length=128, batch_size=32,
                      mask_rate=0.15, mask_token_rate=0.8, random_token_rate=0.1,
                      shuffle=True, seed=0, cache=True,
                      drop_remainder=False) -> TaskData:
    """Packed `[CLS] ... [SEP]` sequences with dynamic BERT masking.

    Texts are tokenized, separated by `[SEP]`, concatenated and cut into
    chunks of `sequence_length - 2` ids, each wrapped as `[CLS] chunk [SEP]`
    (the last one padded). Masking (15%, 80/10/10 by default) is drawn anew
    every epoch from stateless random ops seeded by `seed`, so runs are
    reproducible; padding, `[CLS]` and `[SEP]` are never masked, and random
    replacements are never special tokens.

    Args:
        texts: list of str.
        tokenizer: a `keraslm.text.Tokenizer`.
        sequence_length: int. Defaults to `128`.
        batch_size: int. Defaults to `32`.
        mask_rate: float. Share of positions selected. Defaults to `0.15`.
        mask_token_rate: float. Selected positions set to `[MASK]`. Defaults to `0.8`.
        random_token_rate: float. Selected positions set to a random id.
            Defaults to `0.1`.
        shuffle, seed, cache, drop_remainder: see `causal_lm_dataset`.

    Returns:
        `TaskData`; batches are `({"token_ids", "padding_mask"}, labels,
        sample_weight)`, labels = original ids at selected positions, -100
        elsewhere.

    Example:

    ```python
    mlm = masked_lm_dataset(lines, tokenizer, sequence_length=64, batch_size=8)
    x, y, w = next(iter(mlm.dataset))
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size)
    if sequence_length < 3:
        raise ValueError(f"`sequence_length` must be at least 3 ([CLS] id [SEP]). "
                         f"Received: sequence_length={sequence_length}.")
    for name, value in (("mask_rate", mask_rate), ("mask_token_rate", mask_token_rate),
                        ("random_token_rate", random_token_rate)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value}.")
    if mask_token_rate + random_token_rate > 1.0:
        raise ValueError(
            f"`mask_token_rate + random_token_rate` must be at most 1. Received: "
            f"{mask_token_rate} + {random_token_rate}.")
    ids = tokenize_texts(tokenizer, texts)
    ids = _wrap(ids, np.iinfo(np.int32).max, end_id=tokenizer.sep_id)
    chunks, num_tokens = _pack(ids, sequence_length - 2)
    rows = chunks.shape[0]
    real = chunks != st.PAD_ID
    lengths = real.sum(axis=1)
    windows = np.full((rows, sequence_length), st.PAD_ID, dtype=np.int32)
    windows[:, 0] = tokenizer.cls_id
    windows[:, 1:-1] = chunks
    windows[np.arange(rows), lengths + 1] = tokenizer.sep_id
    vocabulary_size = tokenizer.vocabulary_size

    def to_model_inputs(token_ids, seed_pair):
        masked, labels, _ = mask_tokens(
            token_ids, seed_pair, vocabulary_size=vocabulary_size,
            mask_rate=mask_rate, mask_token_rate=mask_token_rate,
            random_token_rate=random_token_rate, mask_id=tokenizer.mask_id,
            unmaskable_ids=(tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id))
        padding_mask, weights = _mask_and_weights(token_ids, labels)
        return {"token_ids": masked, "padding_mask": padding_mask}, labels, weights

    dataset = tf.data.Dataset.from_tensor_slices(windows)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds))
    dataset = dataset.map(to_model_inputs, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    return TaskData(dataset, num_examples=rows, num_tokens=num_tokens,
                    batch_size=batch_size)


# ----------------------------------------------------------- classification
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
        batches are `({"token_ids", "padding_mask"}, label_ids)`.

    Example:

    ```python
    train = data.read_table("../shared/data/reviews/train.csv")
    task = classification_dataset(train.texts, train.labels, tokenizer,
                                  source=train.path, positions=train.lines)
    model.fit(task.dataset, class_weight=task.class_weights)
    ```
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size)
    texts = _check_strings(texts, "texts")
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
    truncated = _report_truncation(lengths + 2, sequence_length, "texts")
    ids = _wrap(ids, sequence_length, tokenizer.cls_id, tokenizer.sep_id)
    dataset = _rows_dataset({"token_ids": ids, "label": label_ids})

    def to_model_inputs(batch):
        token_ids = batch["token_ids"]
        return ({"token_ids": token_ids,
                 "padding_mask": tf.not_equal(token_ids, tokenizer.pad_id)},
                batch["label"])

    shapes = {"token_ids": tf.TensorShape(
        [sequence_length if padding == "max_length" else None]),
              "label": tf.TensorShape([])}
    _check_padding(padding)
    dataset = _finish(
        dataset, num_examples=len(texts), batch_size=batch_size, shuffle=shuffle,
        seed=seed, cache=cache, padded_shapes=shapes,
        padding_values={"token_ids": tokenizer.pad_id, "label": 0},
        bucket_boundaries=bucket_boundaries, length_key="token_ids",
        drop_remainder=drop_remainder, to_model_inputs=to_model_inputs)
    return TaskData(dataset, num_examples=len(texts), num_truncated=truncated,
                    num_tokens=int(lengths.sum()), batch_size=batch_size,
                    label_vocabulary=label_vocabulary,
                    class_weights=label_vocabulary.class_weights(labels))


# ----------------------------------------------------- token classification
def align_word_labels(word_pieces, word_label_ids):
    """Spreads one label per word over its subword pieces.

    The first piece of each word gets the word's label; the other pieces get
    -100 (ignored by the loss).

    Args:
        word_pieces: ragged `[sentences, words, pieces]` ids.
        word_label_ids: ragged `[sentences, words]` label ids.

    Returns:
        `(token_ids, labels)`, both ragged `[sentences, pieces]`.

    Example:

    ```python
    pieces = tf.ragged.constant([[[7], [8, 9]]])       # 2 words, 3 pieces
    align_word_labels(pieces, tf.ragged.constant([[1, 2]]))[1].to_list()
    # [[1, 2, -100]]
    ```
    """
    pieces_per_word = word_pieces.values.row_lengths()
    positions = tf.ragged.range(pieces_per_word)
    first = tf.equal(positions.flat_values, 0)
    repeated = tf.repeat(tf.cast(word_label_ids.flat_values, tf.int32),
                         pieces_per_word)
    labels = tf.where(first, repeated, IGNORE_INDEX)
    token_ids = word_pieces.merge_dims(1, 2)
    return token_ids, token_ids.with_flat_values(labels)


def token_classification_dataset(tokens, tags, tokenizer, *, label_vocabulary=None,
                                 sequence_length=128, batch_size=32, shuffle=True,
                                 seed=0, cache=True, padding="max_length",
                                 bucket_boundaries=None, drop_remainder=False,
                                 source=None, positions=None) -> TaskData:
    """Word-tagged sentences as `[CLS] pieces [SEP]` with first-subword labels.

    Each word is tokenized on its own; its tag goes to its first piece and
    the other pieces (and `[CLS]`, `[SEP]`, padding) get -100. Sentences
    longer than `sequence_length` pieces are truncated; the count and the
    number of words whose label was cut off are reported.

    Args:
        tokens: list of list of str (words per sentence).
        tags: list of list of str, the same shape.
        tokenizer: a `keraslm.text.Tokenizer`.
        label_vocabulary: `LabelVocabulary` or None (built from `tags`).
        (other arguments: see `classification_dataset`.)

    Returns:
        `TaskData`; batches are `({"token_ids", "padding_mask"}, labels,
        sample_weight)`.

    Example:

    ```python
    brown = data.read_conll("../shared/data/brown/test.conll")
    task = token_classification_dataset(brown.tokens, brown.tags, tokenizer)
    ```
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size)
    tokens, tags = list(tokens), list(tags)
    if len(tokens) != len(tags):
        raise DataError(f"`tokens` and `tags` must have the same length. Received: "
                        f"{len(tokens)} sentences and {len(tags)} tag lists.")
    if not tokens:
        raise DataError("`tokens` is empty. Expected at least one sentence.")
    for i, (words, word_tags) in enumerate(zip(tokens, tags)):
        if len(words) != len(word_tags) or not words:
            where = f"line {positions[i]}" if positions is not None else f"index {i}"
            raise DataError(
                f"Sentence {i} ({where}{' of ' + source if source else ''}) has "
                f"{len(words)} words and {len(word_tags)} tags. Expected one tag "
                f"per word and at least one word.")
    if label_vocabulary is None:
        label_vocabulary = LabelVocabulary.fit(t for s in tags for t in s)
    flat_tags = [t for s in tags for t in s]
    flat_positions = None
    if positions is not None:
        flat_positions = [f"line {p + j}" for p, s in zip(positions, tags)
                          for j in range(len(s))]
    tag_ids = label_vocabulary.encode(flat_tags, source=source, positions=flat_positions)
    row_lengths = [len(s) for s in tokens]
    words = tf.RaggedTensor.from_row_lengths(
        tf.constant([w for s in tokens for w in s], dtype=tf.string), row_lengths)
    word_labels = tf.RaggedTensor.from_row_lengths(
        tf.constant(tag_ids, dtype=tf.int32), row_lengths)
    pieces = _tokenize_words(tokenizer, words)
    token_ids, labels = align_word_labels(pieces, word_labels)
    lengths = token_ids.row_lengths().numpy()
    room = sequence_length - 2
    truncated = _report_truncation(lengths + 2, sequence_length, "sentences")
    if truncated:
        lost = int(tf.reduce_sum(tf.cast(labels[:, room:].flat_values != IGNORE_INDEX,
                                         tf.int32)))
        warnings.warn(f"Truncation removed the labels of {lost} words.",
                      TruncationWarning, stacklevel=2)
    token_ids = _wrap(token_ids, sequence_length, tokenizer.cls_id, tokenizer.sep_id)
    labels = _wrap(labels, sequence_length, IGNORE_INDEX, IGNORE_INDEX)
    dataset = _rows_dataset({"token_ids": token_ids, "labels": labels})

    def to_model_inputs(batch):
        token_ids, labels = batch["token_ids"], batch["labels"]
        padding_mask, weights = _mask_and_weights(token_ids, labels)
        return {"token_ids": token_ids, "padding_mask": padding_mask}, labels, weights

    size = sequence_length if padding == "max_length" else None
    _check_padding(padding)
    dataset = _finish(
        dataset, num_examples=len(tokens), batch_size=batch_size, shuffle=shuffle,
        seed=seed, cache=cache,
        padded_shapes={"token_ids": tf.TensorShape([size]),
                       "labels": tf.TensorShape([size])},
        padding_values={"token_ids": tokenizer.pad_id, "labels": IGNORE_INDEX},
        bucket_boundaries=bucket_boundaries, length_key="token_ids",
        drop_remainder=drop_remainder, to_model_inputs=to_model_inputs)
    return TaskData(dataset, num_examples=len(tokens), num_truncated=truncated,
                    num_tokens=int(lengths.sum()), batch_size=batch_size,
                    label_vocabulary=label_vocabulary)


def _tokenize_words(tokenizer, words, batch_size=1024):
    parts = []
    for start in range(0, int(words.nrows()), batch_size):
        parts.append(tokenizer.tokenize_words(words[start:start + batch_size]))
    return tf.concat(parts, axis=0) if len(parts) > 1 else parts[0]


# ------------------------------------------------------------------ seq2seq
def seq2seq_dataset(sources, targets, tokenizer, *, target_tokenizer=None,
                    source_length=128, target_length=128, batch_size=32,
                    shuffle=True, seed=0, cache=True, padding="max_length",
                    bucket_boundaries=None, drop_remainder=False) -> TaskData:
    """Source/target pairs with teacher forcing.

    The encoder reads `source [SEP]`; the decoder reads `[CLS] target` and
    learns to predict `target [SEP]` (its input shifted by one). Pairs longer
    than the maxima are truncated and counted.

    Args:
        sources: list of str.
        targets: list of str.
        tokenizer: a `keraslm.text.Tokenizer` for the sources (and targets).
        target_tokenizer: a `keraslm.text.Tokenizer` for the targets, or None
            to share `tokenizer`.
        source_length: int. Encoder length. Defaults to `128`.
        target_length: int. Decoder length. Defaults to `128`.
        (other arguments: see `classification_dataset`; buckets use the
        source length.)

    Returns:
        `TaskData`; batches are `({"encoder_token_ids", "encoder_padding_mask",
        "decoder_token_ids", "decoder_padding_mask"}, labels, sample_weight)`.

    Example:

    ```python
    pairs = data.read_pairs("../shared/data/bible_en_es/valid.tsv")
    task = seq2seq_dataset(pairs.sources, pairs.targets, tokenizer,
                           source_length=64, target_length=64)
    ```
    """
    _check_positive(source_length=source_length, target_length=target_length,
                    batch_size=batch_size)
    sources = _check_strings(sources, "sources")
    targets = _check_strings(targets, "targets")
    if len(sources) != len(targets):
        raise DataError(f"`sources` and `targets` must have the same length. "
                        f"Received: {len(sources)} and {len(targets)}.")
    target_tokenizer = target_tokenizer or tokenizer
    source_ids = tokenize_texts(tokenizer, sources)
    target_ids = tokenize_texts(target_tokenizer, targets)
    source_lengths = source_ids.row_lengths().numpy()
    target_lengths = target_ids.row_lengths().numpy()
    truncated_sources = _report_truncation(source_lengths + 1, source_length, "sources",
                                           argument="source_length")
    truncated_targets = _report_truncation(target_lengths + 1, target_length, "targets",
                                           argument="target_length")
    encoder = _wrap(source_ids, source_length, end_id=tokenizer.eos_id)
    full = _wrap(target_ids, target_length + 1, target_tokenizer.bos_id,
                 target_tokenizer.eos_id)
    decoder = full[:, :-1]
    labels = full[:, 1:]
    dataset = _rows_dataset({"encoder": encoder, "decoder": decoder,
                             "labels": labels})

    def to_model_inputs(batch):
        labels = tf.where(tf.equal(batch["labels"], st.PAD_ID), IGNORE_INDEX,
                          batch["labels"])
        x = {"encoder_token_ids": batch["encoder"],
             "encoder_padding_mask": tf.not_equal(batch["encoder"], tokenizer.pad_id),
             "decoder_token_ids": batch["decoder"],
             "decoder_padding_mask": tf.not_equal(batch["decoder"],
                                                  target_tokenizer.pad_id)}
        return x, labels, tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)

    _check_padding(padding)
    longest = padding == "longest"
    dataset = _finish(
        dataset, num_examples=len(sources), batch_size=batch_size, shuffle=shuffle,
        seed=seed, cache=cache,
        padded_shapes={"encoder": tf.TensorShape([None if longest else source_length]),
                       "decoder": tf.TensorShape([None if longest else target_length]),
                       "labels": tf.TensorShape([None if longest else target_length])},
        padding_values={"encoder": tokenizer.pad_id, "decoder": target_tokenizer.pad_id,
                        "labels": st.PAD_ID},
        bucket_boundaries=bucket_boundaries, length_key="encoder",
        drop_remainder=drop_remainder, to_model_inputs=to_model_inputs)
    return TaskData(dataset, num_examples=len(sources),
                    num_truncated=max(truncated_sources, truncated_targets),
                    num_tokens=int(source_lengths.sum() + target_lengths.sum()),
                    batch_size=batch_size)


# -------------------------------------------------------------------- split
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
