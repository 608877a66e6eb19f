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

MODEL_CLASSES = {"lstm_lm": LSTMLM, "transformer_lm": TransformerLM,
                 "transformer_encoder": TransformerEncoder,
                 "seq2seq_transformer": Seq2SeqTransformer}


def option_names(name):
    """The options a builder of `BUILDERS` takes (`model_options` keys):
    its own arguments and its model class's, plus `name` and `dtype`.

    Example:

    ```python
    "num_layers" in keraslm.models.option_names("transformer_lm")  # True
    ```
    """
    import inspect

    names = {"name", "dtype"}
    for function in (BUILDERS[name], MODEL_CLASSES[name].__init__):
        for parameter in inspect.signature(function).parameters.values():
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return sorted(names - {"self", "preset", "vocabulary_size"})

__all__ = [
    "BUILDERS", "LSTMLM", "MODEL_CLASSES", "option_names", "PRESETS", "Seq2SeqTransformer", "TransformerEncoder",
    "TransformerLM", "lstm_lm", "seq2seq_transformer", "transformer_encoder",
    "transformer_lm",
]
