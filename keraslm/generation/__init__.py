"""Text generation with a key/value cache.

`generate` prefills the cache with the prompt in one call, then decodes one
token per step through `model.call_with_cache`, so each new token costs one
position, not the whole sequence. On TensorFlow the decoding loop and the
sampler run as one XLA program (a `while_loop`; draws are Gumbel-max from a
stateless generator seeded by `seed` and the step); on other backends each
step is a compiled call and sampling happens in NumPy. Models without a
cache (the LSTM LM) are run on the whole sequence at each step.

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


def _tf_sample(logits, sampler, temperature, top_k, top_p, seed):
    """`_pick` in TensorFlow ops: one id from float32 logits `(vocab,)`;
    `temperature`, `top_k` and `top_p` are tensors (no recompilation)."""
    import tensorflow as tf

    if sampler == "greedy":
        return tf.argmax(logits, output_type=tf.int32)
    logits = logits / tf.maximum(temperature, 1e-6)
    if sampler in ("top_k", "top_p"):
        order = tf.argsort(logits, direction="DESCENDING")
        ordered = tf.gather(logits, order)
    if sampler == "top_k":
        k = tf.minimum(top_k, tf.shape(logits)[0])
        logits = tf.where(logits < ordered[k - 1], -float("inf"), logits)
    elif sampler == "top_p":
        # Keep the shortest prefix whose mass reaches top_p (at least one id).
        before = tf.cumsum(tf.nn.softmax(ordered), exclusive=True)
        keep = tf.scatter_nd(order[:, None], before < top_p, tf.shape(logits))
        logits = tf.where(keep, logits, -float("inf"))
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits).
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed, minval=1e-20,
                                          maxval=1.0)
    return tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), output_type=tf.int32)


def _compiled_loop(model, total_length, sampler, banned_ids, stop_id):
    """The whole decoding loop as one XLA program (TensorFlow backend).

    Inside an XLA `while_loop` the cache index is a loop variable, not a
    compile-time constant, so one program serves every position (what
    keras-hub's `generate` does too). Compiled once per model, total length,
    sampler, banned ids and stop id; the sampler's numbers are inputs.
    """
    import tensorflow as tf

    key = (total_length, sampler, tuple(banned_ids), stop_id)
    loops = model.__dict__.setdefault("_keraslm_decode_loops", {})
    if key in loops:
        return loops[key]

    def next_id(logits, step, settings):
        logits = tf.cast(logits, tf.float32)
        if banned_ids:
            banned = tf.scatter_nd([[i] for i in banned_ids],
                                   tf.ones([len(banned_ids)], tf.bool),
                                   tf.shape(logits))
            logits = tf.where(banned, -float("inf"), logits)
        temperature, top_k, top_p, seed = settings
        return _tf_sample(logits, sampler, temperature, top_k, top_p,
                          tf.stack([seed, step]))

    @tf.function(jit_compile=True)
    def loop(last_logits, cache, start, num_new, settings):
        buffer = tf.zeros([total_length], tf.int32)

        def emit(step, logits, buffer):
            token = next_id(logits, step, settings)
            stopped = tf.constant(False) if stop_id is None else tf.equal(token, stop_id)
            return token, stopped, tf.tensor_scatter_nd_update(buffer, [[step]], [token])

        def condition(step, done, *_):
            return tf.logical_and(step < num_new, tf.logical_not(done))

        def body(step, done, token, cache, buffer):
            # Run the previous token, then draw the next: no forward pass is
            # spent after the last token.
            logits, _, cache = model.call_with_cache(
                tf.reshape(token, [1, 1]), cache, start + step - 1)
            token, stopped, buffer = emit(step, logits[0, -1], buffer)
            return step + 1, stopped, token, cache, buffer

        token, done, buffer = emit(tf.constant(0), last_logits, buffer)
        step, done, _, _, buffer = tf.while_loop(
            condition, body, (tf.constant(1), done, token, cache, buffer))
        # A stop id ends decoding and is not returned.
        return buffer, tf.where(done, step - 1, step)

    loops[key] = loop
    return loop


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
