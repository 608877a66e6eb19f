"""Readers for user files and `tf.data` pipelines per task.

Each pipeline builder tokenizes its examples once (in parallel `tf.data`
batches), reports sequences longer than the maximum (truncated, with a
`TruncationWarning` and the count in the result), and returns a `TaskData`
whose `dataset` yields `(inputs, labels)` batches ready for `model.fit`:
`inputs` is a dict of exactly the model's inputs and labels are -100
(`IGNORE_INDEX`) wherever nothing is scored.

| task                 | inputs                                    | labels (ignored = -100)      |
|----------------------|-------------------------------------------|------------------------------|
| causal LM            | `token_ids`                               | next token ids               |
| masked LM            | `token_ids` (masked)                      | original ids at masked pos.  |
| classification       | `token_ids`                               | label id, shape `[batch]`    |
| token classification | `token_ids`                               | tag id on first subwords     |
| seq2seq              | `encoder_token_ids`, `decoder_token_ids`  | next target ids              |

There are no padding masks or sample weights: padding is `token_ids == 0`
(`[PAD]`, see `keraslm.text.special_tokens`), which the models turn into
their masks, and the losses skip label -100 (for a plain Keras loss, use
`keras.losses.SparseCategoricalCrossentropy(ignore_class=-100)`).

The modules: `batching` (`TaskData`, `tokenize_texts` and the shared
batching helpers), `causal_lm`, `masked_lm`, `classification`,
`token_classification`, `seq2seq` (one pipeline family each), `splitting`
(`train_validation_split`), `readers` (whole files, `.gz` included),
`sources` (`Corpus`: a file, directory or glob read as a stream) and
`token_cache` (`TokenCache`: a corpus's ids on disk, read by window, for
corpora larger than memory).

Example:

```python
from keraslm import data, text

train = data.read_table("../shared/data/reviews/train.csv")
(texts, labels), (valid_texts, valid_labels) = data.train_validation_split(
    train.texts, train.labels, validation_fraction=0.1, seed=0)
tokenizer = text.WordPieceTokenizer.train(texts, vocabulary_size=2000)
task = data.classification_dataset(texts, labels, tokenizer, sequence_length=128)
valid = data.classification_dataset(valid_texts, valid_labels, tokenizer,
                                    label_vocabulary=task.label_vocabulary,
                                    shuffle=False)
inputs, label_ids = next(iter(task.dataset))
inputs["token_ids"].shape       # (32, 128)
```
"""

from keraslm.data.batching import IGNORE_INDEX, TaskData, tokenize_texts
from keraslm.data.causal_lm import causal_lm_dataset
from keraslm.data.classification import classification_dataset
from keraslm.data.errors import DataError, TruncationWarning
from keraslm.data.masked_lm import mask_tokens, masked_lm_dataset
from keraslm.data.readers import (
    TaggedSentences, TextExamples, TextPairs, read_conll, read_examples, read_file,
    read_pairs, read_table, read_text,
)
from keraslm.data.seq2seq import seq2seq_dataset
from keraslm.data.sources import Corpus, expand_paths
from keraslm.data.splitting import train_validation_split
from keraslm.data.token_cache import TokenCache, cached_tokenizer
from keraslm.data.token_classification import align_word_labels, token_classification_dataset

__all__ = [
    "Corpus", "DataError", "TokenCache", "cached_tokenizer", "expand_paths", "IGNORE_INDEX", "TaggedSentences", "TaskData", "TextExamples",
    "TextPairs", "TruncationWarning", "align_word_labels", "causal_lm_dataset",
    "classification_dataset", "mask_tokens", "masked_lm_dataset", "read_conll",
    "read_examples", "read_file", "read_pairs", "read_table", "read_text",
    "seq2seq_dataset", "token_classification_dataset", "tokenize_texts",
    "train_validation_split",
]
