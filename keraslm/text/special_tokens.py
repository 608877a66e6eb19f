"""The special tokens every keraslm tokenizer shares.

All built-in tokenizers reserve the same five tokens at the same ids, so task
pipelines, heads and losses never need to ask which tokenizer made the ids:

| id | token     | used as                                                  |
|----|-----------|----------------------------------------------------------|
| 0  | `[PAD]`   | padding (models mask `token_ids == 0` themselves)        |
| 1  | `[UNK]`   | anything outside the vocabulary                          |
| 2  | `[CLS]`   | beginning of sequence (causal LM) / classification token |
| 3  | `[SEP]`   | end of sequence / separator                              |
| 4  | `[MASK]`  | masked-LM corruption                                     |

Example:

```python
from keraslm.text import special_tokens

special_tokens.PAD_ID, special_tokens.MASK    # (0, '[MASK]')
```
"""

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"

BOS = CLS
EOS = SEP

SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
"""The reserved tokens, in id order."""

PAD_ID = 0
UNK_ID = 1
CLS_ID = BOS_ID = 2
SEP_ID = EOS_ID = 3
MASK_ID = 4

NUM_SPECIAL_TOKENS = len(SPECIAL_TOKENS)

IGNORE_INDEX = -100
"""Label value for positions a loss must skip (padding, non-first subwords).

Use it with `keras.losses.SparseCategoricalCrossentropy(ignore_class=-100)`;
the pipelines yield no sample weights.
"""
