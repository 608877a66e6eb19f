"""Tokenizers, cleaning and vocabularies.

Every tokenizer shares the special tokens of `keraslm.text.special_tokens`
(`[PAD]`=0, `[UNK]`=1, `[CLS]`/bos=2, `[SEP]`/eos=3, `[MASK]`=4), runs inside
`tf.data`, and saves to / loads from a directory.

Example:

```python
import keraslm

lines = keraslm.data.read_text("../shared/data/shakespeare/train.txt")
tokenizer = keraslm.text.train_tokenizer("wordpiece", lines[:5000],
                                         vocabulary_size=1000)
tokenizer.save("run/tokenizer")
tokenizer = keraslm.text.load_tokenizer("run/tokenizer")
tokenizer.encode("To be, or not to be")
```
"""

from keraslm.text import special_tokens
from keraslm.text.byte import ByteTokenizer
from keraslm.text.character import CharacterTokenizer
from keraslm.text.cleaning import (
    ENGLISH_STOP_WORDS, TextCleaner, augment, random_deletion, random_swap,
    remove_stop_words, strip_html,
)
from keraslm.text.sentencepiece import SentencePieceTokenizer
from keraslm.text.special_tokens import IGNORE_INDEX
from keraslm.text.tokenizer import (
    Tokenizer, TokenizerError, load_tokenizer, tokenizer_class, train_tokenizer,
)
from keraslm.text.vocabulary import LabelVocabulary, UnknownLabelError
from keraslm.text.word import WordTokenizer
from keraslm.text.wordpiece import WordPieceTokenizer

__all__ = [
    "ByteTokenizer", "CharacterTokenizer", "ENGLISH_STOP_WORDS", "IGNORE_INDEX",
    "LabelVocabulary", "SentencePieceTokenizer", "TextCleaner", "Tokenizer",
    "TokenizerError", "UnknownLabelError", "WordPieceTokenizer", "WordTokenizer",
    "augment", "load_tokenizer", "random_deletion", "random_swap",
    "remove_stop_words", "special_tokens", "strip_html", "tokenizer_class",
    "train_tokenizer",
]
