"""Text generation with a key/value cache.

`generate` prefills the cache with the prompt in one call, then decodes one
token per step through `model.call_with_cache`, so each new token costs one
position, not the whole sequence. On TensorFlow the decoding loop and the
sampler run as one XLA program (a `while_loop`; draws are Gumbel-max from a
stateless generator seeded by `seed` and the step); on other backends each
step is a compiled call and sampling happens in NumPy. Models without a
cache (the LSTM LM) are run on the whole sequence at each step.

Modules:

- `api`: `generate_ids` and `generate`, the public entry points.
- `loop`: the compiled decoding step and the XLA decoding loop.
- `samplers`: `SAMPLERS` and how each one draws an id, in NumPy and in
  TensorFlow.
- `translate`: greedy decoding of encoder-decoder models (`translate`,
  `translate_ids`), one encoder pass and one position per step.

Example:

```python
import keraslm

text = keraslm.generation.generate(model, tokenizer, "ROMEO:",
                                   max_new_tokens=100, sampler="top_k", seed=1)
```
"""

from keraslm.generation.api import generate, generate_ids
from keraslm.generation.samplers import SAMPLERS
from keraslm.generation.translate import translate, translate_ids

__all__ = ["SAMPLERS", "generate", "generate_ids", "translate", "translate_ids"]
