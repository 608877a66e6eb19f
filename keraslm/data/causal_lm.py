"""Causal language modelling: packed next-token prediction windows.

Example:

```python
from keraslm import data, text

lines = data.read_text("../shared/data/shakespeare/train.txt")
tokenizer = text.WordPieceTokenizer.train(lines[:5000], vocabulary_size=1000)
lm = data.causal_lm_dataset(lines, tokenizer, sequence_length=128, batch_size=32)
inputs, labels = next(iter(lm.dataset))
inputs["token_ids"].shape       # (32, 128)
```
"""

import math

import numpy as np
import tensorflow as tf

from keraslm.data.batching import (
    AUTOTUNE, IGNORE_INDEX, TaskData, check_positive, tokenize_texts, wrap,
)
from keraslm.data.errors import DataError
from keraslm.text import special_tokens as st


def causal_lm_dataset(texts, tokenizer, *, sequence_length=128, batch_size=32,
                      shuffle=True, seed=0, add_bos=False, cache=True,
                      drop_remainder=False, random_offsets=False,
                      stride=None, shard=None) -> TaskData:
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
        texts: list of str (documents: lines, blocks, ...), or a
            `keraslm.data.TokenCache` (the ids of a corpus on disk, for
            corpora larger than memory: each batch's windows are read from
            its file; the batches are the same as for the texts it holds).
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
        shard: `(num_shards, index)` or None. Keep only every
            `num_shards`-th window of each pass, from window `index` on (one
            worker's share: the workers' windows are disjoint and together
            are the whole pass). From a token cache only those windows' ids
            are read. `steps_per_epoch` is that of the share.

    Returns:
        `TaskData`; batches are `({"token_ids": ...}, labels)`, both of
        shape `[batch, sequence_length]`; labels are the next ids, -100 at
        padding and at ids an earlier window already scored.

    Example:

    ```python
    lm = causal_lm_dataset(lines, tokenizer, sequence_length=64, batch_size=8)
    inputs, labels = next(iter(lm.dataset))
    # Evaluation in which every id has at least 48 ids of context:
    scored = causal_lm_dataset(lines, tokenizer, sequence_length=64,
                               shuffle=False, stride=16)
    ```
    """
    check_positive(sequence_length=sequence_length, batch_size=batch_size)
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
    num_shards, shard_index = check_shard(shard)
    from keraslm.data.token_cache import TokenCache

    if isinstance(texts, TokenCache):
        # Ids on disk: windows are read from the file batch by
        # batch, in exactly the order the in-memory path gives.
        stream = texts.ids
        read_windows = texts.read_windows
    else:
        ids = tokenize_texts(tokenizer, texts)
        ids = wrap(ids, np.iinfo(np.int32).max,
                   start_id=tokenizer.bos_id if add_bos else None,
                   end_id=tokenizer.eos_id)
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
        return {"token_ids": token_ids}, labels

    if isinstance(texts, TokenCache):
        dataset, count = _mapped_windows(read_windows, len(stream), sequence_length,
                                         stride, seed, shuffle, random_offsets,
                                         batch_size, drop_remainder,
                                         (num_shards, shard_index))
        count = _share(count, num_shards, shard_index)
        dataset = dataset.map(lambda window, first: to_model_inputs(window, first),
                              num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
        return TaskData(dataset, num_examples=count, num_tokens=len(stream),
                        batch_size=batch_size)
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
    if num_shards > 1:
        dataset = dataset.shard(num_shards, shard_index)
        count = _share(count, num_shards, shard_index)
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


def check_shard(shard):
    """`(num_shards, index)` from `shard` (None: one shard), checked."""
    if shard is None:
        return 1, 0
    try:
        num_shards, index = shard
    except (TypeError, ValueError):
        num_shards = index = None
    if not (isinstance(num_shards, (int, np.integer)) and isinstance(index, (int, np.integer))
            and not isinstance(num_shards, bool) and not isinstance(index, bool)
            and num_shards >= 1 and 0 <= index < num_shards):
        raise ValueError(f"`shard` must be `(num_shards, index)` with num_shards >= 1 and "
                         f"0 <= index < num_shards, or None. Received: shard={shard!r}")
    return int(num_shards), int(index)


def _share(count, num_shards, index):
    """How many of `count` windows, taken every `num_shards`-th from `index`."""
    share = max(0, -(-(count - index) // num_shards))
    if share == 0:
        raise DataError(f"Shard {index} of {num_shards} gets no window: the data holds "
                        f"only {count} window(s). Expected at least one per shard; use "
                        f"fewer workers or more data.")
    return share


def _mapped_windows(read_windows, total, sequence_length, stride, seed, shuffle,
                    random_offsets, batch_size, drop_remainder, shard=(1, 0)):
    """Batches of `(windows, first_scored)` read from `total` ids on disk
    (`read_windows(starts, length)`: `TokenCache.read_windows`), in the
    order `_rotating_windows` / the fixed-window path give for the same
    ids: the element stream holds window numbers (and each pass's offset),
    and each batch's ids are read on the host."""
    span = np.arange(sequence_length + 1)
    if random_offsets:
        count = math.ceil((total - 1) / sequence_length)

        def one_pass(epoch):
            epoch_seed = tf.stack([tf.constant(seed, tf.int64), epoch])
            offset = tf.random.stateless_uniform([], epoch_seed, maxval=sequence_length,
                                                 dtype=tf.int32)
            order = tf.range(count)
            if shuffle:
                order = tf.argsort(tf.random.stateless_uniform(
                    [count], epoch_seed + tf.constant([0, 1 << 32], tf.int64)))
            return tf.data.Dataset.from_tensor_slices(
                (tf.cast(order, tf.int64), tf.fill([count], offset)))

        elements = tf.data.Dataset.range(np.iinfo(np.int64).max).flat_map(one_pass)
        step = sequence_length
    else:
        count = 1 + math.ceil(max(0, total - 1 - sequence_length) / stride)
        elements = tf.data.Dataset.range(count)
        if shuffle:
            elements = elements.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        elements = elements.map(lambda index: (index, tf.constant(0, tf.int32)))
        step = stride

    def gather(index, offset):
        positions = index[:, None] * step + span[None, :]
        inside = positions < total
        # The rotated stream: position j holds ids[(j + offset) % total].
        starts = index * step + offset.astype(np.int64)
        windows = np.where(inside, read_windows(starts, sequence_length + 1),
                           st.PAD_ID).astype(np.int32)
        if random_offsets:
            first = np.zeros(len(index), np.int32)
        else:
            first = np.where(index == 0, 0, sequence_length - stride).astype(np.int32)
        return windows, first

    def read(index, offset):
        windows, first = tf.numpy_function(gather, [index, offset], [tf.int32, tf.int32],
                                           stateful=False)
        windows.set_shape([None, sequence_length + 1])
        first.set_shape([None])
        return windows, first

    if shard[0] > 1:
        elements = elements.shard(*shard)  # before any id is read
    dataset = elements.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(read, num_parallel_calls=AUTOTUNE), count
