"""Text generation with a key/value cache.

`generate` prefills the cache with the prompt in one call, then decodes one
token per step through `model.call_with_cache`, so each new token costs one
position, not the whole sequence. Models without a cache (the LSTM LM) are
run on the whole sequence at each step.

Example:

```python
import keraslm

text = keraslm.generation.generate(model, tokenizer, "ROMEO:",
                                   max_new_tokens=100, sampler="top_k", seed=1)
```
"""

import numpy as np

SAMPLERS = ("greedy", "top_k", "top_p", "random")


def _pick(logits, sampler, temperature, top_k, top_p, rng):
    if sampler == "greedy":
        return int(np.argmax(logits))
    logits = logits.astype("float64") / max(temperature, 1e-6)
    if sampler == "top_k":
        cutoff = np.sort(logits)[-min(top_k, len(logits))]
        logits = np.where(logits < cutoff, -np.inf, logits)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    if sampler == "top_p":
        order = np.argsort(-probabilities)
        cumulative = np.cumsum(probabilities[order])
        keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]
        mask = np.zeros_like(probabilities)
        mask[keep] = probabilities[keep]
        probabilities = mask / mask.sum()
    return int(rng.choice(len(probabilities), p=probabilities))


def _compiled_step(model):
    """`call_with_cache` for one new token, compiled once per model."""
    import keras

    step = getattr(model, "_keraslm_decode_step", None)
    if step is not None:
        return step

    def decode(token_ids, cache, index):
        logits, _, cache = model.call_with_cache(token_ids, cache, index)
        return logits, cache

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # A graph, not XLA: the cache index feeds slice offsets that XLA
        # treats as compile-time constants, recompiling at every position.
        step = tf.function(decode)
    elif backend == "jax":
        import jax

        step = jax.jit(decode)
    else:
        step = decode
    model._keraslm_decode_step = step
    return step


def generate_ids(model, prompt_ids, max_new_tokens=100, *, sampler="greedy",
                 temperature=1.0, top_k=40, top_p=0.9, seed=0, stop_id=None,
                 banned_ids=(0,)):
    """Continues `prompt_ids` (a list of ints) and returns the new ids.

    Args:
        model: a causal LM; `keraslm.models.TransformerLM` decodes with its cache.
        prompt_ids: list of int. At least one id.
        max_new_tokens: int. Defaults to `100`.
        sampler: str. `"greedy"`, `"top_k"`, `"top_p"` or `"random"`.
        temperature: float. Divides the logits before sampling. Defaults to `1.0`.
        top_k: int. For `"top_k"`. Defaults to `40`.
        top_p: float. For `"top_p"`. Defaults to `0.9`.
        seed: int. Defaults to `0`.
        stop_id: int or None. Stop after generating this id (not returned).
        banned_ids: ids never generated. Defaults to `(0,)` (padding).

    Example:

    ```python
    new_ids = keraslm.generation.generate_ids(model, [5, 17, 9], 20)
    ```
    """
    if sampler not in SAMPLERS:
        from keraslm.registry import unknown_name_message

        raise ValueError(unknown_name_message("sampler", sampler, SAMPLERS))
    if not prompt_ids:
        raise ValueError("`prompt_ids` is empty: generation needs at least one "
                         "token to start from (for example the bos id).")
    from keras import ops

    rng = np.random.default_rng(seed)
    banned = list(banned_ids)
    ids = list(prompt_ids)
    generated = []
    cached = hasattr(model, "call_with_cache")
    if cached:
        step = _compiled_step(model)
        limit = getattr(model, "max_sequence_length", None)
        if model.position_encoding == "learned" and len(ids) + max_new_tokens > limit:
            raise ValueError(
                f"Prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) "
                f"exceeds the model's max_sequence_length ({limit}).")
        cache = model.empty_cache(1, len(ids) + max_new_tokens)
        logits, _, cache = model.call_with_cache(np.array([ids], "int32"), cache, 0)
    for _ in range(max_new_tokens):
        if not cached:
            logits = model(np.array([ids], "int32"), training=False)
        last = np.array(logits, dtype="float32")[0, -1]
        last[banned] = -np.inf
        token = _pick(last, sampler, temperature, top_k, top_p, rng)
        if stop_id is not None and token == stop_id:
            break
        generated.append(token)
        ids.append(token)
        if cached:
            logits, cache = step(ops.convert_to_tensor([[token]], "int32"), cache,
                                 ops.convert_to_tensor(len(ids) - 1, "int32"))
    return generated


def generate(model, tokenizer, prompt, max_new_tokens=100, *, newline_at_eos=False,
             **options):
    """Continues the text `prompt` and returns prompt + continuation.

    Decoding stops at the tokenizer's end-of-text id, unless `newline_at_eos`
    is set: models trained on one document per line learn end-of-text as
    the line break, and then it is written as "\n" and decoding goes on.
    Options are those of `generate_ids`.

    Example:

    ```python
    keraslm.generation.generate(model, tokenizer, "To be", 50, sampler="top_p")
    ```
    """
    prompt_ids = tokenizer.encode(prompt) if prompt else []
    if not prompt_ids:
        prompt_ids = [tokenizer.eos_id]
    new_ids = generate_ids(model, prompt_ids, max_new_tokens,
                           stop_id=None if newline_at_eos else tokenizer.eos_id,
                           banned_ids=(tokenizer.pad_id, tokenizer.unk_id,
                                       tokenizer.mask_id), **options)
    lines, current = [], []
    for token in new_ids:
        if token == tokenizer.eos_id:
            lines.append(current)
            current = []
        else:
            current.append(token)
    lines.append(current)
    return prompt + "\n".join(tokenizer.decode(line) if line else "" for line in lines)
