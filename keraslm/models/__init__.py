"""Model builders: causal LM, BERT-style encoder, encoder-decoder, LSTM LM.

Each builder takes keras-hub's argument names plus `preset=` (`"tiny"`,
`"small"`, `"base"`; see `keraslm.models.PRESETS`) and returns a functional
Keras model with `get_config`/`from_config`, saved and loaded as `.keras`.

Example:

```python
import keraslm

model = keraslm.models.transformer_lm(vocabulary_size=8192, preset="tiny")
```
"""

from keraslm.models.lstm_lm import LSTMLM
from keraslm.models.lstm_lm import lstm_lm
from keraslm.models.presets import PRESETS
from keraslm.models.seq2seq_transformer import Seq2SeqTransformer
from keraslm.models.seq2seq_transformer import seq2seq_transformer
from keraslm.models.transformer_encoder import TransformerEncoder
from keraslm.models.transformer_encoder import transformer_encoder
from keraslm.models.transformer_lm import TransformerLM
from keraslm.models.transformer_lm import transformer_lm

BUILDERS = {
    "lstm_lm": lstm_lm,
    "transformer_lm": transformer_lm,
    "transformer_encoder": transformer_encoder,
    "seq2seq_transformer": seq2seq_transformer,
}
"""Builder functions by the name `keraslm train --model` uses."""

__all__ = [
    "BUILDERS", "LSTMLM", "PRESETS", "Seq2SeqTransformer", "TransformerEncoder",
    "TransformerLM", "lstm_lm", "seq2seq_transformer", "transformer_encoder",
    "transformer_lm",
]
