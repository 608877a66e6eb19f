"""`generate_ids` (ids in, new ids out) and `generate` (text in, text out).

`generate_ids` checks its options (`check_options`, before anything runs),
left-pads a batch of prompts, prefills the model's cache or state with them
in one call (`keraslm.generation.decoders`) and hands decoding to:

- the TensorFlow XLA loop (`keraslm.generation.loop`) for the samplers
  (greedy, top-k, top-p, random), with the repetition penalty, n-gram
  blocking and stop ids inside it; stop strings are checked between chunks
  of `STOP_CHECK_EVERY` steps of it;
- beam search (`keraslm.generation.beam`, `num_beams=`), a Python loop over
  the compiled decoder step;
- on other backends, and for models with neither a cache nor a state, the
  step-by-step loop here with the NumPy samplers and processors.
"""

import numbers

import numpy as np

from keraslm.generation.loop import _compiled_loop, _compiled_prefill, _compiled_step
from keraslm.generation.processors import process_row
from keraslm.generation.samplers import SAMPLERS, _pick

#: Steps of the XLA loop between two checks of `stop_condition` (stop strings).
STOP_CHECK_EVERY = 8

#: The cache (and the loop's buffer of ids) holds prompt + new ids rounded
#: up to a multiple of this, so that prompts of nearby lengths share one
#: compiled loop; the slots past the end are masked.
LENGTH_BUCKET = 16


def _cache_length(prompt_length, max_new_tokens):
    return -(-(prompt_length + max_new_tokens) // LENGTH_BUCKET) * LENGTH_BUCKET


def check_options(*, max_new_tokens=100, sampler="greedy", temperature=1.0, top_k=40,
                  top_p=0.9, seed=0, stop_ids=(), repetition_penalty=1.0,
                  no_repeat_ngram_size=0, num_beams=None, length_penalty=1.0,
                  early_stopping=True):
    """Raises a ValueError naming the first bad decoding option, the value
    received and what is expected (`generate_ids` and `keraslm generate`
    call it before loading or running anything)."""
    if sampler not in SAMPLERS:
        from keraslm.registry import unknown_name_message

        raise ValueError(unknown_name_message("sampler", sampler, SAMPLERS))

    def integer(value, low):
        return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and value >= low)

    def number(value, good):
        return (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and good(value))

    checks = (
        ("max_new_tokens", max_new_tokens, "an integer >= 0", integer(max_new_tokens, 0)),
        ("temperature", temperature, "a number > 0", number(temperature, lambda v: v > 0)),
        ("top_k", top_k, "an integer >= 1", integer(top_k, 1)),
        ("top_p", top_p, "in (0, 1]", number(top_p, lambda v: 0 < v <= 1)),
        ("seed", seed, "an integer", integer(seed, -(1 << 63))),
        ("repetition_penalty", repetition_penalty,
         "a number > 0 (1.0 is no penalty, > 1 discourages repeats)",
         number(repetition_penalty, lambda v: v > 0)),
        ("no_repeat_ngram_size", no_repeat_ngram_size, "an integer >= 0 (0 is off)",
         integer(no_repeat_ngram_size, 0)),
        ("num_beams", num_beams, "None (no beam search) or an integer >= 1",
         num_beams is None or integer(num_beams, 1)),
        ("length_penalty", length_penalty, "a number",
         number(length_penalty, lambda v: np.isfinite(v))),
        ("early_stopping", early_stopping, "True or False",
         isinstance(early_stopping, bool)),
        ("stop_ids", stop_ids, "a list of integer ids",
         isinstance(stop_ids, (list, tuple)) and all(integer(i, 0) for i in stop_ids)),
    )
    for name, value, expected, good in checks:
        if not good:
            raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    if num_beams is not None and sampler != "greedy":
        raise ValueError(
            f"Beam search (`num_beams`) keeps the most likely continuations and "
            f"does not sample: `sampler` must be 'greedy' with it. Received: "
            f"num_beams={num_beams!r}, sampler={sampler!r}")


def generate_ids(model, prompt_ids, max_new_tokens=100, *, sampler="greedy",
                 temperature=1.0, top_k=40, top_p=0.9, seed=0, stop_id=None,
                 stop_ids=(), banned_ids=(0,), repetition_penalty=1.0,
                 no_repeat_ngram_size=0, num_beams=None, length_penalty=1.0,
                 early_stopping=True, stop_condition=None, stream=None):
    """Continues prompts and returns the new ids.

    A batch of prompts of different lengths is left-padded and decoded
    together; each row stops on its own, and gives the ids it gives alone.

    Args:
        model: a causal LM. `keraslm.models.TransformerLM` decodes with its
            key/value cache, `keraslm.models.LSTMLM` with its recurrent
            state; other models are run on the whole sequence per step.
        prompt_ids: list of int (one prompt), or a list of such lists (a
            batch). Each prompt needs at least one id.
        max_new_tokens: int. At most this many new ids per prompt.
            Defaults to `100`.
        sampler: str. `"greedy"`, `"top_k"`, `"top_p"` or `"random"`.
        temperature: float. Divides the logits before sampling. Defaults to `1.0`.
        top_k: int. For `"top_k"`. Defaults to `40`.
        top_p: float. For `"top_p"`. Defaults to `0.9`.
        seed: int. The same seed gives the same draws. Defaults to `0`.
        stop_id: int or None. A row stops after generating this id (not
            returned); kept for compatibility, same as `stop_ids=[stop_id]`.
        stop_ids: list of int. A row stops after generating any of them
            (not returned). Defaults to `()`.
        banned_ids: ids never generated. Defaults to `(0,)` (padding).
        repetition_penalty: float. CTRL-style: the logits of ids already in
            the row are divided (positive) or multiplied (negative) by it;
            `1.0` (the default) changes nothing.
        no_repeat_ngram_size: int. If > 0, no n-gram of this size occurs
            twice in a row (prompt included). Defaults to `0` (off).
        num_beams: int or None. Beam search with this many beams
            (`keraslm.generation.beam`; needs `sampler="greedy"`; `1`
            gives the greedy ids). Defaults to `None` (no beam search).
        length_penalty: float. Beam search: hypotheses are scored by their
            summed log-probability over `length ** length_penalty`.
            Defaults to `1.0`.
        early_stopping: bool. Beam search: stop a row once it has
            `num_beams` finished hypotheses (`True`, the default), or go on
            while a running beam could still beat them (`False`).
        stop_condition: callable or None. Called with a row's new ids; when
            it returns True the row stops there (the ids are returned up to
            and including the one that made it true). `generate` builds one
            from stop strings. The XLA loop checks it every
            `STOP_CHECK_EVERY` steps and cuts each row at the first id that
            satisfies it.
        stream: callable or None. Called with the new ids of every row so
            far (a list of lists) as decoding goes: after each chunk of
            `STOP_CHECK_EVERY` steps of the XLA loop, after each step of
            the step-by-step loop; beam search calls it once, at the end
            (its best row is known only then). The last call has the ids
            that are returned.

    Returns:
        list of int (the new ids of one prompt), or a list of such lists
        for a batch.

    Example:

    ```python
    new_ids = keraslm.generation.generate_ids(model, [5, 17, 9], 20)
    batch = keraslm.generation.generate_ids(model, [[5, 17, 9], [4]], 20,
                                            sampler="top_p", seed=1)
    ```
    """
    if hasattr(model, "cross_attention_cache"):
        raise ValueError(
            f"{type(model).__name__} is an encoder-decoder model: it translates a "
            f"source rather than continuing a prompt. Use "
            f"keraslm.generation.translate(model, tokenizer, sources).")
    stop_ids = tuple(stop_ids) + (() if stop_id is None else (stop_id,))
    check_options(max_new_tokens=max_new_tokens, sampler=sampler, temperature=temperature,
                  top_k=top_k, top_p=top_p, seed=seed, stop_ids=list(stop_ids),
                  repetition_penalty=repetition_penalty,
                  no_repeat_ngram_size=no_repeat_ngram_size, num_beams=num_beams,
                  length_penalty=length_penalty, early_stopping=early_stopping)
    single, prompts = _prompt_rows(prompt_ids)
    stop_ids = tuple(sorted(set(int(i) for i in stop_ids)))
    banned = tuple(sorted(set(int(i) for i in banned_ids)))
    outputs = _decode(model, prompts, max_new_tokens, dict(
        sampler=sampler, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        stop_ids=stop_ids, banned_ids=banned, repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size, num_beams=num_beams,
        length_penalty=length_penalty, early_stopping=early_stopping,
        stop_condition=stop_condition, stream=stream))
    return outputs[0] if single else outputs


def _prompt_rows(prompt_ids):
    """`(single, rows)`: whether one prompt was given, and the prompts as
    lists of int."""
    if isinstance(prompt_ids, np.ndarray):
        prompt_ids = prompt_ids.tolist()
    prompt_ids = list(prompt_ids)
    if not prompt_ids:
        raise ValueError("`prompt_ids` is empty: generation needs at least one "
                         "token to start from (for example the bos id).")
    single = all(isinstance(i, numbers.Integral) for i in prompt_ids)
    rows = [prompt_ids] if single else [
        list(row) if isinstance(row, (list, tuple, np.ndarray)) else row
        for row in prompt_ids]
    for index, row in enumerate(rows):
        if (not isinstance(row, list) or not row
                or not all(isinstance(i, numbers.Integral) for i in row)):
            raise ValueError(
                f"`prompt_ids` must be a list of ids or a list of non-empty lists "
                f"of ids. Received: prompt {index} = {row!r}")
    return single, [[int(i) for i in row] for row in rows]


def _left_pad(prompts, multiple=1):
    """`(batch, left_padding)`: the prompts right-aligned in an int32
    array, padded with 0 (to a width that is a multiple of `multiple`);
    `left_padding` is None when no row is padded."""
    longest = -(-max(len(row) for row in prompts) // multiple) * multiple
    batch = np.zeros((len(prompts), longest), "int32")
    padding = np.array([longest - len(row) for row in prompts], "int32")
    for row, ids in enumerate(prompts):
        batch[row, padding[row]:] = ids
    return batch, (padding if padding.any() else None)


def _decode(model, prompts, max_new_tokens, options, decoder=None):
    """New ids for each prompt with the checked `options` of `generate_ids`;
    `decoder` defaults to `decoders.decoder_for(model)`."""
    import keras

    from keraslm.generation.beam import beam_search
    from keraslm.generation.decoders import decoder_for

    decoder = decoder or decoder_for(model)
    decoder.check_length(max(len(row) for row in prompts), max_new_tokens)
    if max_new_tokens == 0:
        return [[] for _ in prompts]
    batch, padding = _left_pad(prompts)
    step = _compiled_step(model, decoder) if decoder.compiled else decoder.step
    if options["num_beams"] is not None:
        outputs = beam_search(
            decoder, step, prompts, batch, padding, max_new_tokens,
            _cache_length(batch.shape[1], max_new_tokens),
            **{name: options[name] for name in (
                "num_beams", "length_penalty", "early_stopping", "stop_ids",
                "banned_ids", "repetition_penalty", "no_repeat_ngram_size",
                "stop_condition")})
        if options.get("stream") is not None:
            options["stream"](outputs)
        return outputs
    if decoder.compiled and keras.backend.backend() == "tensorflow":
        return _xla_decode(model, decoder, prompts, batch, padding, max_new_tokens,
                           options)
    return _stepwise_decode(decoder, step, prompts, batch, padding, max_new_tokens,
                            options)


def _xla_decode(model, decoder, prompts, batch, padding, max_new_tokens, options):
    """Decoding in the XLA `while_loop` of `keraslm.generation.loop`, in
    chunks of `STOP_CHECK_EVERY` steps when there is a `stop_condition`."""
    import tensorflow as tf

    if decoder.prefill_in_xla:
        # One compiled prefill per bucket of prompt lengths: the prompts are
        # left-padded to a multiple of LENGTH_BUCKET (padding is masked and
        # left out of the positions, so the logits are those of the rows alone).
        batch, padding = _left_pad(prompts, LENGTH_BUCKET)
        prefill = _compiled_prefill(model, decoder)  # NumPy arrays trace by shape
    else:
        prefill = decoder.prefill
    rows, start = batch.shape
    total = _cache_length(start, max_new_tokens)
    logits, state = prefill(batch, padding, total)
    logits = tf.cast(logits, tf.float32)
    penalize = options["repetition_penalty"] != 1.0
    present = np.zeros((rows, logits.shape[-1] if penalize else 1), bool)
    if penalize:
        for row, ids in enumerate(prompts):
            present[row, ids] = True
    sequence = np.zeros((rows, total), "int32")
    sequence[:, :start] = batch
    loop = _compiled_loop(model, decoder, options["sampler"], options["banned_ids"],
                          options["stop_ids"], penalize, options["no_repeat_ngram_size"])
    settings = (tf.constant(options["temperature"], tf.float32),
                tf.constant(options["top_k"], tf.int32),
                tf.constant(options["top_p"], tf.float32),
                tf.constant(options["seed"] % (1 << 31), tf.int32),
                tf.constant(options["repetition_penalty"], tf.float32))
    carry = (tf.constant(0), logits, state, tf.constant(sequence), tf.constant(present),
             tf.zeros([rows], tf.int32), tf.zeros([rows], tf.bool))
    limit = tf.constant(max_new_tokens, tf.int32)
    left_padding = tf.constant(np.zeros(rows, "int32") if padding is None else padding)
    condition = options["stop_condition"]
    stream = options.get("stream")
    chunk = (STOP_CHECK_EVERY if condition is not None or stream is not None
             else max_new_tokens)
    cut = [None] * rows
    end = 0
    while True:
        checked, end = end, min(end + chunk, max_new_tokens)
        was_done = carry[6].numpy() if checked else np.zeros(rows, bool)
        carry = loop(carry, tf.constant(end, tf.int32), limit, tf.constant(start, tf.int32),
                     left_padding, settings)
        sequence, lengths, done = (carry[3].numpy(), carry[5].numpy(), carry[6].numpy())
        if condition is not None:
            stopped = done.copy()
            for row in range(rows):
                # Rows still running, or stopped by a stop id in this chunk.
                if cut[row] is None and not was_done[row]:
                    new = sequence[row, start:start + lengths[row]].tolist()
                    cut[row] = _first_stop(condition, new, checked)
                    stopped[row] = done[row] or cut[row] is not None
            if not stopped.all():
                carry = carry[:6] + (tf.constant(stopped),)
        if stream is not None:
            stream([_kept(sequence[row, start:start + lengths[row]].tolist(), cut[row])
                    for row in range(rows)])
        if done.all() or end >= max_new_tokens or (condition and all(
                cut[row] is not None or done[row] for row in range(rows))):
            break
    return [_kept(sequence[row, start:start + lengths[row]].tolist(), cut[row])
            for row in range(rows)]


def _kept(new_ids, cut):
    return new_ids if cut is None else new_ids[:cut]


def _first_stop(condition, new_ids, checked):
    """The shortest length > `checked` at which `condition(new_ids[:length])`
    holds, or None."""
    if not condition(new_ids):
        return None
    for length in range(max(checked, 0) + 1, len(new_ids) + 1):
        if condition(new_ids[:length]):
            return length
    return len(new_ids)


def _stepwise_decode(decoder, step, prompts, batch, padding, max_new_tokens, options):
    """One compiled step per new id, sampled in NumPy (backends other than
    TensorFlow, and models decoded by rerunning the whole sequence)."""
    from keras import ops

    rng = np.random.default_rng(options["seed"])
    rows, start = batch.shape
    logits, state = decoder.prefill(batch, padding, _cache_length(start, max_new_tokens))
    new = [[] for _ in prompts]
    done = np.zeros(rows, bool)
    stops = set(options["stop_ids"])
    condition = options["stop_condition"]
    for index in range(max_new_tokens):
        last = np.asarray(logits, "float32")
        tokens = np.zeros(rows, "int32")
        for row in np.flatnonzero(~done):
            processed = process_row(last[row], prompts[row] + new[row],
                                    options["banned_ids"], options["repetition_penalty"],
                                    options["no_repeat_ngram_size"])
            token = _pick(processed, options["sampler"], options["temperature"],
                          options["top_k"], options["top_p"], rng)
            tokens[row] = token
            if token in stops:
                done[row] = True
                continue
            new[row].append(token)
            if condition is not None and condition(new[row]):
                done[row] = True
        if options.get("stream") is not None:
            options["stream"]([list(ids) for ids in new])
        if done.all() or index == max_new_tokens - 1:
            break
        if decoder.compiled:
            logits, state = step(ops.convert_to_tensor(tokens, "int32"), state,
                                 ops.convert_to_tensor(start + index, "int32"))
        else:
            logits, state = step(tokens, state, start + index)
    return new


def stop_cutter(stop):
    """`cut(text)`: `text` up to the first of the stop strings `stop` (a
    string or a list of them, checked here), or whole; `cut.stops` lists
    them.

    Example:

    ```python
    stop_cutter(["\\n\\n", "END"])("To be\\n\\nor not")   # 'To be'
    ```
    """
    stops = [stop] if isinstance(stop, str) else list(stop)
    if not all(isinstance(text, str) and text for text in stops):
        raise ValueError(f"`stop` must be a non-empty string or a list of them. "
                         f"Received: stop={stop!r}")

    def cut(text):
        ends = [text.find(s) for s in stops if s in text]
        return text[:min(ends)] if ends else text

    cut.stops = stops
    return cut


def generate(model, tokenizer, prompt, max_new_tokens=100, *, newline_at_eos=False,
             stop=(), stream=None, **options):
    """Continues the text `prompt` (or each text of a list) and returns
    prompt + continuation (a str, or a list of str).

    Decoding stops at the tokenizer's end-of-text id, unless `newline_at_eos`
    is set: models trained on one document per line learn end-of-text as
    the line break, and then it is written as "\\n" and decoding goes on.
    `stop` (a string or a list of strings) ends a row's decoding once one
    of them appears in its continuation, which is cut just before the
    first. `stream`, if given, is called with the continuation of each
    prompt so far (a list of str, cut at stop strings) as decoding goes
    (see `generate_ids`); `keraslm generate --prompt` prints them as they
    come. Other options are those of `generate_ids` (`sampler`,
    `num_beams`, `repetition_penalty`, `stop_ids`, ...).

    Example:

    ```python
    keraslm.generation.generate(model, tokenizer, "To be", 50, sampler="top_p")
    keraslm.generation.generate(model, tokenizer, ["ROMEO:", "JULIET:"], 80,
                                stop="\\n\\n", repetition_penalty=1.2)
    keraslm.generation.generate(model, tokenizer, "To be", 200,
                                stream=lambda texts: print(texts[0]))
    ```
    """
    single = isinstance(prompt, str)
    prompts = [prompt] if single else list(prompt)
    if not prompts or not all(isinstance(text, str) for text in prompts):
        raise ValueError(f"`prompt` must be a string or a non-empty list of strings. "
                         f"Received: prompt={prompt!r}")
    cut = stop_cutter(stop)
    prompt_ids = [(tokenizer.encode(text) if text else []) or [tokenizer.eos_id]
                  for text in prompts]

    def text_of(new_ids):
        lines, current = [], []
        for token in new_ids:
            if token == tokenizer.eos_id:
                lines.append(current)
                current = []
            else:
                current.append(token)
        lines.append(current)
        return "\n".join(tokenizer.decode(line) if line else "" for line in lines)

    stop_ids = tuple(options.pop("stop_ids", ())) + (
        () if newline_at_eos else (tokenizer.eos_id,))
    condition = ((lambda new_ids: cut(text_of(new_ids)) != text_of(new_ids))
                 if cut.stops else None)
    texts_of = ((lambda rows: stream([cut(text_of(ids)) for ids in rows]))
                if stream is not None else None)
    new_ids = generate_ids(model, prompt_ids, max_new_tokens, stop_ids=stop_ids,
                           stream=texts_of,
                           banned_ids=(tokenizer.pad_id, tokenizer.unk_id,
                                       tokenizer.mask_id),
                           stop_condition=condition, **options)
    texts = [text + cut(text_of(ids)) for text, ids in zip(prompts, new_ids)]
    return texts[0] if single else texts
