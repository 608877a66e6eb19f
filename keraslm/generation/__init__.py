"""Text generation for causal LMs (and translation for encoder-decoders).

`generate_ids` / `generate` take one prompt or a batch of prompts of
different lengths (left-padded; each row stops on its own and gives what it
gives alone). The prompt is run once to fill the model's key/value cache
(`TransformerLM.call_with_cache`) or recurrent state
(`LSTMLM.call_with_state`); then each new token costs one position, not the
whole sequence. On TensorFlow the decoding loop, the logits processors
(repetition penalty, no-repeat n-grams, banned ids) and the sampler run as
one XLA program (a `while_loop`; draws are Gumbel-max from a stateless
generator seeded by `seed` and the step). Beam search (`num_beams=`) is a
Python loop over the compiled step; on other backends every loop is.
Models with neither a cache nor a state are run on the whole sequence at
each step.

Options (the same names in `keraslm generate`): `max_new_tokens`,
`sampler` (`"greedy"`, `"top_k"`, `"top_p"`, `"random"`), `temperature`,
`top_k`, `top_p`, `seed`, `num_beams`, `length_penalty`,
`early_stopping`, `repetition_penalty`, `no_repeat_ngram_size`,
`stop_ids` (several stop ids) and, in `generate`, `stop` (stop strings).

Modules:

- `api`: `generate_ids`, `generate` and `check_options`, the public entry
  points, and the step-by-step loop.
- `decoders`: how a model is prefilled and run one step at a time (cache,
  recurrent state, or the whole sequence again).
- `loop`: the compiled decoding step and the XLA decoding loop.
- `processors`: repetition penalty, no-repeat n-grams and banned ids, in
  NumPy and in TensorFlow.
- `samplers`: `SAMPLERS` and how each one draws an id, in NumPy and in
  TensorFlow.
- `beam`: beam search (width, length penalty, early stopping).
- `translate`: greedy decoding of encoder-decoder models (`translate`,
  `translate_ids`), one encoder pass and one position per step.

Example:

```python
import keraslm

text = keraslm.generation.generate(model, tokenizer, "ROMEO:",
                                   max_new_tokens=100, sampler="top_k", seed=1)
texts = keraslm.generation.generate(model, tokenizer, ["ROMEO:", "JULIET:"], 100,
                                    num_beams=4, repetition_penalty=1.2,
                                    stop=["\n\n"])
```
"""

from keraslm.generation.api import check_options, generate, generate_ids
from keraslm.generation.samplers import SAMPLERS
from keraslm.generation.translate import translate, translate_ids

__all__ = ["SAMPLERS", "check_options", "generate", "generate_ids", "translate",
           "translate_ids"]
