"""Readers for user files and `tf.data` pipelines per task.

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
```
"""

from keraslm.data.errors import DataError, TruncationWarning
from keraslm.data.pipelines import (
    IGNORE_INDEX, TaskData, align_word_labels, causal_lm_dataset,
    classification_dataset, mask_tokens, masked_lm_dataset, seq2seq_dataset,
    token_classification_dataset, tokenize_texts, train_validation_split,
)
from keraslm.data.readers import (
    TaggedSentences, TextExamples, TextPairs, read_conll, read_examples, read_file,
    read_pairs, read_table, read_text,
)

__all__ = [
    "DataError", "IGNORE_INDEX", "TaggedSentences", "TaskData", "TextExamples",
    "TextPairs", "TruncationWarning", "align_word_labels", "causal_lm_dataset",
    "classification_dataset", "mask_tokens", "masked_lm_dataset", "read_conll",
    "read_examples", "read_file", "read_pairs", "read_table", "read_text",
    "seq2seq_dataset", "token_classification_dataset", "tokenize_texts",
    "train_validation_split",
]
