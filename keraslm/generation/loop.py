"""The compiled decoding steps behind `keraslm.generation.generate_ids`.

Both are built once per model and cached on it:

- `_compiled_step`: one `call_with_cache` call for one new token (a
  `tf.function` graph on TensorFlow, `jax.jit` on JAX), driven by the
  Python loop in `keraslm.generation.api` on backends other than TensorFlow.
- `_compiled_loop`: on TensorFlow, the whole decoding loop and the sampler
  (`keraslm.generation.samplers._tf_sample`) as one XLA `while_loop`.
"""

from keraslm.generation.samplers import _tf_sample


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
