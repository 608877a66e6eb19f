"""Masked language modelling: packed `[CLS] ... [SEP]` rows, BERT masking.

Example:

```python
from keraslm import data, text

lines = data.read_text("../shared/data/shakespeare/train.txt")
tokenizer = text.WordPieceTokenizer.train(lines[:5000], vocabulary_size=1000)
mlm = data.masked_lm_dataset(lines, tokenizer, sequence_length=128, batch_size=32)
inputs, labels = next(iter(mlm.dataset))   # labels: original ids where masked
```
"""

import math

import numpy as np
import tensorflow as tf

from keraslm.data.batching import (
    AUTOTUNE, IGNORE_INDEX, TaskData, check_positive, tokenize_texts, wrap,
)
from keraslm.text import special_tokens as st


def _pack(ids, window):
    """Concatenates rows and cuts windows of `window` ids, the last one padded."""
    stream = ids.flat_values.numpy()
    count = max(1, math.ceil(len(stream) / window))
    padded = np.full(count * window, st.PAD_ID, dtype=np.int32)
    padded[: len(stream)] = stream
    return padded.reshape(count, window), len(stream)


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
        `TaskData`; batches are `({"token_ids": ...}, labels)` of shape
        `[batch, sequence_length]`: the masked ids, and the original ids at
        selected positions, -100 elsewhere.

    Example:

    ```python
    mlm = masked_lm_dataset(lines, tokenizer, sequence_length=64, batch_size=8)
    inputs, labels = next(iter(mlm.dataset))
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """
    check_positive(sequence_length=sequence_length, batch_size=batch_size)
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
    ids = wrap(ids, np.iinfo(np.int32).max, end_id=tokenizer.sep_id)
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
        return {"token_ids": masked}, labels

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
