"""How a step's logits are changed before an id is drawn from them.

Applied in this order, to the raw logits (before the temperature):

1. `repetition_penalty` (CTRL, Keskar et al., 2019): the logit of every id
   already in the row (prompt and new ids) is divided by the penalty when
   positive and multiplied by it when negative, so a penalty > 1 makes
   repeats less likely and `1.0` changes nothing.
2. `no_repeat_ngram_size` `n`: an id that would complete an n-gram already
   in the row (prompt included) gets `-inf`; `0` turns it off.
3. `banned_ids` get `-inf` (padding, unknown, ...).

Each has a NumPy form for one row (`process_row`: the step-by-step loop and
beam search) and a TensorFlow form for a batch (`tf_process`: inside the
XLA decoding loop of `keraslm.generation.loop`); both follow the same rule.

Example:

```python
keraslm.generation.generate_ids(model, [5, 17, 9], 50, repetition_penalty=1.3,
                                no_repeat_ngram_size=3)
```

References:
    - [Keskar et al., 2019](https://arxiv.org/abs/1909.05858) (CTRL)
"""

import numpy as np


def repeated_ngram_ids(ids, size):
    """The ids that would complete an n-gram of `size` already in `ids`."""
    if size <= 0 or len(ids) < size - 1:
        return []
    prefix = tuple(ids[len(ids) - size + 1:]) if size > 1 else ()
    return [ids[start + size - 1] for start in range(len(ids) - size + 1)
            if tuple(ids[start:start + size - 1]) == prefix]


def process_row(logits, ids, banned_ids=(), repetition_penalty=1.0,
                no_repeat_ngram_size=0):
    """The processed float logits `(vocab,)` of one row whose ids so far
    (prompt and new, no padding) are `ids`."""
    logits = np.array(logits, dtype="float64")
    if repetition_penalty != 1.0 and ids:
        present = np.unique(np.asarray(ids, "int64"))
        values = logits[present]
        logits[present] = np.where(values > 0, values / repetition_penalty,
                                   values * repetition_penalty)
    if no_repeat_ngram_size:
        logits[repeated_ngram_ids(ids, no_repeat_ngram_size)] = -np.inf
    if len(banned_ids):
        logits[list(banned_ids)] = -np.inf
    return logits


def tf_process(logits, banned_ids, present, penalty, sequence, position,
               left_padding, no_repeat_ngram_size):
    """`process_row` for a batch in TensorFlow ops.

    Args:
        logits: float32 `(batch, vocab)`.
        banned_ids: tuple of int (compile-time).
        present: bool `(batch, vocab)`, the ids in each row so far, or None
            (no repetition penalty, compile-time).
        penalty: float32 scalar tensor.
        sequence: int32 `(batch, total_length)`: the left-padded rows, slots
            `< position` filled.
        position: int32 scalar, the slot of the id being drawn.
        left_padding: int32 `(batch,)`.
        no_repeat_ngram_size: int (compile-time); 0 is off.
    """
    import tensorflow as tf

    if present is not None:
        penalized = tf.where(logits > 0, logits / penalty, logits * penalty)
        logits = tf.where(present, penalized, logits)
    if no_repeat_ngram_size:
        repeats = _tf_repeated_ngrams(sequence, position, left_padding,
                                      no_repeat_ngram_size, logits.shape[-1])
        logits = tf.where(repeats, -float("inf"), logits)
    if banned_ids:
        banned = tf.scatter_nd([[i] for i in banned_ids],
                               tf.ones([len(banned_ids)], tf.bool),
                               [logits.shape[-1]])
        logits = tf.where(banned[None, :], -float("inf"), logits)
    return logits


def _tf_repeated_ngrams(sequence, position, left_padding, size, vocabulary_size):
    """bool `(batch, vocab)`: the ids that would complete an n-gram of `size`
    already in each row (`repeated_ngram_ids` for a batch, static shapes)."""
    import tensorflow as tf

    total = sequence.shape[1]
    count = total - size + 1  # n-gram start slots
    if count <= 0:
        return tf.zeros([tf.shape(sequence)[0], vocabulary_size], tf.bool)
    starts = tf.range(count)
    # An n-gram inside the row's real ids, ending before `position`, and a
    # prefix (the last size - 1 ids) inside them too.
    match = tf.logical_and(starts[None, :] >= left_padding[:, None],
                           starts[None, :] <= position - size)
    match = tf.logical_and(match, (position - size + 1 >= left_padding)[:, None])
    for offset in range(size - 1):
        previous = tf.gather(sequence, tf.maximum(position - size + 1 + offset, 0),
                             axis=1)
        match = tf.logical_and(
            match, tf.equal(sequence[:, offset:offset + count], previous[:, None]))
    following = sequence[:, size - 1:size - 1 + count]
    # Unmatched starts go to an extra column, cut off below.
    ids = tf.where(match, following, vocabulary_size)
    rows = tf.broadcast_to(tf.range(tf.shape(sequence)[0])[:, None], tf.shape(ids))
    indices = tf.reshape(tf.stack([rows, ids], axis=-1), [-1, 2])
    hits = tf.scatter_nd(indices, tf.ones([tf.shape(indices)[0]], tf.int32),
                         [tf.shape(sequence)[0], vocabulary_size + 1])
    return hits[:, :vocabulary_size] > 0
