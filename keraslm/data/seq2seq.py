"""Sequence to sequence: source/target pairs with teacher forcing.

Example:

```python
from keraslm import data, text

pairs = data.read_pairs("../shared/data/bible_en_es/valid.tsv")
tokenizer = text.WordPieceTokenizer.train(pairs.sources + pairs.targets,
                                          vocabulary_size=2000)
task = data.seq2seq_dataset(pairs.sources, pairs.targets, tokenizer)
inputs, labels = next(iter(task.dataset))
sorted(inputs)                  # ['decoder_token_ids', 'encoder_token_ids']
```
"""

import tensorflow as tf

from keraslm.data.batching import (
    IGNORE_INDEX, TaskData, check_padding, check_positive, check_strings, finish,
    report_truncation, rows_dataset, tokenize_texts, wrap,
)
from keraslm.data.errors import DataError
from keraslm.text import special_tokens as st


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
        `TaskData`; batches are `({"encoder_token_ids": ...,
        "decoder_token_ids": ...}, labels)`: the labels are the decoder ids
        shifted by one (`target [SEP]`), -100 at padding.

    Example:

    ```python
    pairs = data.read_pairs("../shared/data/bible_en_es/valid.tsv")
    task = seq2seq_dataset(pairs.sources, pairs.targets, tokenizer,
                           source_length=64, target_length=64)
    ```
    """
    check_positive(source_length=source_length, target_length=target_length,
                    batch_size=batch_size)
    sources = check_strings(sources, "sources")
    targets = check_strings(targets, "targets")
    if len(sources) != len(targets):
        raise DataError(f"`sources` and `targets` must have the same length. "
                        f"Received: {len(sources)} and {len(targets)}.")
    target_tokenizer = target_tokenizer or tokenizer
    source_ids = tokenize_texts(tokenizer, sources)
    target_ids = tokenize_texts(target_tokenizer, targets)
    source_lengths = source_ids.row_lengths().numpy()
    target_lengths = target_ids.row_lengths().numpy()
    truncated_sources = report_truncation(source_lengths + 1, source_length, "sources",
                                           argument="source_length")
    truncated_targets = report_truncation(target_lengths + 1, target_length, "targets",
                                           argument="target_length")
    encoder = wrap(source_ids, source_length, end_id=tokenizer.eos_id)
    full = wrap(target_ids, target_length + 1, target_tokenizer.bos_id,
                 target_tokenizer.eos_id)
    decoder = full[:, :-1]
    labels = full[:, 1:]
    dataset = rows_dataset({"encoder": encoder, "decoder": decoder,
                             "labels": labels})

    def to_model_inputs(batch):
        labels = tf.where(tf.equal(batch["labels"], st.PAD_ID), IGNORE_INDEX,
                          batch["labels"])
        return ({"encoder_token_ids": batch["encoder"],
                 "decoder_token_ids": batch["decoder"]}, labels)

    check_padding(padding)
    longest = padding == "longest"
    dataset = finish(
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
