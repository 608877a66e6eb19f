"""Token classification: word-tagged sentences, labels on first subwords.

Example:

```python
from keraslm import data, text

brown = data.read_conll("../shared/data/brown/test.conll")
tokenizer = text.WordPieceTokenizer.train(
    [" ".join(words) for words in brown.tokens], vocabulary_size=2000)
task = data.token_classification_dataset(brown.tokens, brown.tags, tokenizer)
inputs, labels = next(iter(task.dataset))   # labels: -100 off first subwords
```
"""

import warnings

import tensorflow as tf

from keraslm.data.batching import (
    IGNORE_INDEX, TaskData, check_padding, check_positive, finish,
    report_truncation, rows_dataset, wrap,
)
from keraslm.data.errors import DataError, TruncationWarning
from keraslm.text.vocabulary import LabelVocabulary


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
        `TaskData`; batches are `({"token_ids": ...}, labels)`, both of
        shape `[batch, sequence_length]` (or the batch's longest): a word's
        tag id on its first piece, -100 elsewhere.

    Example:

    ```python
    brown = data.read_conll("../shared/data/brown/test.conll")
    task = token_classification_dataset(brown.tokens, brown.tags, tokenizer)
    ```
    """
    check_positive(sequence_length=sequence_length, batch_size=batch_size)
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
    truncated = report_truncation(lengths + 2, sequence_length, "sentences")
    if truncated:
        lost = int(tf.reduce_sum(tf.cast(labels[:, room:].flat_values != IGNORE_INDEX,
                                         tf.int32)))
        warnings.warn(f"Truncation removed the labels of {lost} words.",
                      TruncationWarning, stacklevel=2)
    token_ids = wrap(token_ids, sequence_length, tokenizer.cls_id, tokenizer.sep_id)
    labels = wrap(labels, sequence_length, IGNORE_INDEX, IGNORE_INDEX)
    dataset = rows_dataset({"token_ids": token_ids, "labels": labels})

    def to_model_inputs(batch):
        return {"token_ids": batch["token_ids"]}, batch["labels"]

    size = sequence_length if padding == "max_length" else None
    check_padding(padding)
    dataset = finish(
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
