"""The compiled decoding steps behind `keraslm.generation.generate_ids`.

They are built once per model and cached on it:

- `_compiled_step`: one decoder step (`keraslm.generation.decoders`) for
  one new id per row (a `tf.function` graph on TensorFlow, `jax.jit` on
  JAX), driven by the Python loops: beam search
  (`keraslm.generation.beam`) and, on backends other than TensorFlow, the
  step-by-step loop in `keraslm.generation.api`.
- `_compiled_prefill`: on TensorFlow, the prompt's pass through a
  key/value-cache model as one XLA program.
- `_compiled_loop`: on TensorFlow, the whole decoding loop for a batch of
  rows, the logits processors (`keraslm.generation.processors`) and the
  sampler (`keraslm.generation.samplers._tf_sample`) as one XLA
  `while_loop`. Each row stops on its own (a stop id); the loop ends when
  every row has stopped or `end` ids were drawn, and can be resumed from
  what it returns (stop strings are checked between such chunks).
"""

from keraslm.generation.processors import tf_process
from keraslm.generation.samplers import _tf_sample


def _compiled_step(model, decoder):
    """`decoder.step` for one new id per row, compiled once per model."""
    import keras

    step = getattr(model, "_keraslm_decoder_step", None)
    if step is not None:
        return step
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # A graph, not XLA: the cache index feeds slice offsets that XLA
        # treats as compile-time constants, recompiling at every position.
        step = tf.function(decoder.step)
    elif backend == "jax":
        import jax

        step = jax.jit(decoder.step)
    else:
        step = decoder.step
    model._keraslm_decoder_step = step
    return step


def _compiled_prefill(model, decoder):
    """`decoder.prefill` as one XLA program (TensorFlow; decoders with
    `prefill_in_xla`), built once per model and traced per batch size,
    prompt length, cache length and whether rows are padded: the caller
    pads prompts to a multiple of `api.LENGTH_BUCKET` so that nearby
    lengths share a program. An earlier run of
    `benchmarks/generate_speed.py` (results/generate_speed.md) timed the
    prefill of a 16-id prompt of a 4-layer d256 model at 96.9 ms eagerly
    and 6.8 ms compiled."""
    import tensorflow as tf

    prefill = model.__dict__.get("_keraslm_prefill")
    if prefill is None:
        _quiet_expected_retracing()
        prefill = tf.function(decoder.prefill, jit_compile=True)
        model.__dict__["_keraslm_prefill"] = prefill
    return prefill


def _compiled_loop(model, decoder, sampler, banned_ids, stop_ids, penalize,
                   no_repeat_ngram_size):
    """The whole decoding loop as one XLA program (TensorFlow backend).

    Inside an XLA `while_loop` the cache index is a loop variable, not a
    compile-time constant, so one program serves every position (what
    keras-hub's `generate` does too). Compiled once per model, sampler,
    banned ids, stop ids, whether a repetition penalty applies and n-gram
    size (and, by tracing, per batch size and total length); the sampler's
    numbers are inputs.

    The returned function takes and returns the loop's carry
    `(step, logits, state, sequence, present, lengths, done)`:
    `step` ids drawn so far, the logits to draw the next one from, the
    decoder state, the rows `(batch, total_length)` (left-padded prompts
    in slots `< start`, new ids after), the ids present in each row (for
    the repetition penalty; `(batch, 1)` and unused without it), the
    number of new ids kept per row and whether each row has stopped.
    """
    import tensorflow as tf

    _quiet_expected_retracing()
    key = (sampler, tuple(banned_ids), tuple(stop_ids), penalize, no_repeat_ngram_size)
    loops = model.__dict__.setdefault("_keraslm_decode_loops", {})
    if key in loops:
        return loops[key]
    stops = tf.constant(list(stop_ids) or [-1], tf.int32)

    @tf.function(jit_compile=True)
    def loop(carry, end, limit, start, left_padding, settings):
        temperature, top_k, top_p, seed, penalty = settings

        def condition(step, logits, state, sequence, present, lengths, done):
            return tf.logical_and(step < end, tf.logical_not(tf.reduce_all(done)))

        def body(step, logits, state, sequence, present, lengths, done):
            position = start + step
            processed = tf_process(logits, banned_ids, present if penalize else None,
                                   penalty, sequence, position, left_padding,
                                   no_repeat_ngram_size)
            token = _tf_sample(processed, sampler, temperature, top_k, top_p,
                               tf.stack([seed, step]))
            stopped = tf.reduce_any(tf.equal(token[:, None], stops[None, :]), axis=-1)
            kept = tf.logical_not(tf.logical_or(done, stopped))
            rows = tf.range(tf.shape(token)[0])
            sequence = tf.tensor_scatter_nd_update(
                sequence, tf.stack([rows, tf.fill(tf.shape(rows), position)], -1), token)
            if penalize:
                present = tf.logical_or(present, tf.one_hot(
                    token, tf.shape(present)[1], on_value=True, off_value=False))
            lengths = lengths + tf.cast(kept, tf.int32)
            done = tf.logical_not(kept)
            # Run the new id only if another will be drawn from its logits:
            # no forward pass is spent after the last id.
            more = tf.logical_and(step + 1 < limit,
                                  tf.logical_not(tf.reduce_all(done)))
            logits, state = tf.cond(
                more,
                lambda: _float32(decoder.step(token, state, position)),
                lambda: (logits, state))
            return step + 1, logits, state, sequence, present, lengths, done

        return tf.while_loop(condition, body, carry)

    loops[key] = loop
    return loop


def _float32(outputs):
    import tensorflow as tf

    logits, state = outputs
    return tf.cast(logits, tf.float32), state


class _ExpectedRetracing:
    """Drops TensorFlow's "N out of the last N calls to <function
    _compiled_loop.<locals>.loop> triggered tf.function retracing" warning
    (and the compiled prefill's): they are traced once per batch size and
    cache length by design (lengths are rounded to `LENGTH_BUCKET`), which is not the mistake
    the warning is about. Other functions' warnings pass."""

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and ("_compiled_loop" in message or "Decoder.prefill" in message))


def _quiet_expected_retracing():
    import logging

    logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _ExpectedRetracing) for f in logger.filters):
        logger.addFilter(_ExpectedRetracing())
