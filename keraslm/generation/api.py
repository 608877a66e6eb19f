"""`generate_ids` (ids in, new ids out) and `generate` (text in, text out).

`generate_ids` checks its options, prefills the model's cache with the
prompt in one call and hands decoding to the TensorFlow XLA loop
(`keraslm.generation.loop`) or, on other backends and for models without a
cache, to the step-by-step loop here with the NumPy samplers.
"""

import numpy as np

from keraslm.generation.loop import _compiled_loop, _compiled_step
from keraslm.generation.samplers import SAMPLERS, _pick


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
    if hasattr(model, "cross_attention_cache"):
        raise ValueError(
            f"{type(model).__name__} is an encoder-decoder model: it translates a "
            f"source rather than continuing a prompt. Use "
            f"keraslm.generation.translate(model, tokenizer, sources).")
    if sampler not in SAMPLERS:
        from keraslm.registry import unknown_name_message

        raise ValueError(unknown_name_message("sampler", sampler, SAMPLERS))
    if not prompt_ids:
        raise ValueError("`prompt_ids` is empty: generation needs at least one "
                         "token to start from (for example the bos id).")
    checks = (("max_new_tokens", max_new_tokens, "an integer >= 0",
               isinstance(max_new_tokens, int) and max_new_tokens >= 0),
              ("temperature", temperature, "a number > 0", temperature > 0),
              ("top_k", top_k, "an integer >= 1", isinstance(top_k, int) and top_k >= 1),
              ("top_p", top_p, "in (0, 1]", 0 < top_p <= 1))
    for name, value, expected, good in checks:
        if not good:
            raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    from keras import ops

    import keras

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
        if keras.backend.backend() == "tensorflow" and max_new_tokens > 0:
            import tensorflow as tf

            loop = _compiled_loop(model, len(ids) + max_new_tokens, sampler,
                                  tuple(banned), stop_id)
            settings = (tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32),
                        tf.constant(top_p, tf.float32),
                        tf.constant(seed % (1 << 31), tf.int32))
            buffer, count = loop(tf.convert_to_tensor(logits)[0, -1], cache,
                                 tf.constant(len(ids), tf.int32),
                                 tf.constant(max_new_tokens, tf.int32), settings)
            return [int(token) for token in buffer.numpy()[: int(count)]]
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
    the line break, and then it is written as "\\n" and decoding goes on.
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
