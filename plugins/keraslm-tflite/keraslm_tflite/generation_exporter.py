"""The `tflite-generation` and `litertlm` exporters: a Transformer LM's
generation loop as TFLite `prefill_{N}`/`decode` signatures, alone or in a
`.litertlm` bundle for `litert_lm.Engine`.

What both do, in order:

1. Check everything that can be checked without converting: the model is a
   Transformer causal LM, `quantize` is one of `QUANTIZE`, the cache and
   prefill lengths fit, and (litertlm) the tokenizer can be carried exactly.
2. Convert the float32 file (builtin ops only, weights frozen) and check it
   in LiteRT with `TFLiteGenerator`, the reference loop: teacher-forced
   logits (half of each row through the prefill signatures, the rest one
   `decode` call per id) within `atol` of the Keras model, and greedy ids
   equal to `keraslm.generation.generate_ids` from the first rows of
   `inputs` (the report's `greedy_agreement`: the share of new ids equal,
   position by position, and `greedy_tokens`).
3. Quantized (`float16`, `dynamic_int8`): the quantized file is converted
   and checked the same way without a bound on the logits; its greedy ids
   are compared with Keras (and the float32 file), and must agree on at
   least `min_agreement` of the arg-max positions. The report has both
   sizes.
4. litertlm: the bundle (`keraslm_tflite.litertlm`) is built and opened in
   `litert_lm.Engine`: the runtime's tokenizer must give keraslm's ids on
   the check texts (`texts`, else the decoded check inputs), and its greedy
   text from the check prompts is compared with `keraslm generate`'s
   (`engine_agreement`: the share of characters equal).
5. Write `<artifact>.README.txt`: inputs, outputs, signatures and shapes,
   the cache length, and how to run it.

Example:

```python
result = keraslm.export(model, "out/model.litertlm", format="litertlm",
                        tokenizer=tokenizer, quantize="dynamic_int8")
result.details["size_ratio"], result.details["greedy_agreement"]
```
"""

import os
import shutil
import tempfile
import time

import numpy as np

from keraslm.exporting import ExportError, ExportParityError, ExportResult
from keraslm.exporting.parity import artifact_size, check_parity, keras_reference

from keraslm_tflite.generation import QUANTIZE, check_generation_model, check_lengths
from keraslm_tflite.readme import write_readme

#: New ids compared between the exported loop and keraslm per check prompt.
CHECK_NEW_TOKENS = 24


def _check_options(model, quantize, cache_length, prefill_lengths, min_agreement):
    try:
        check_generation_model(model)
    except ValueError as error:
        raise ExportError(str(error)) from None
    if quantize not in QUANTIZE:
        raise ValueError(f"`quantize` must be one of {', '.join(QUANTIZE)}. "
                         f"Received: quantize={quantize!r}")
    if not 0 <= min_agreement <= 1:
        raise ValueError("`min_agreement` must be in [0, 1]. "
                         f"Received: min_agreement={min_agreement!r}")
    return check_lengths(model, cache_length, prefill_lengths)


def _prompts(inputs, cache_length, count=2, length=12):
    """Check prompts cut from the rows of `inputs` (real data): from each of
    the first rows, its first run of ordinary ids (no special id 0-4), at
    most `length` long."""
    from keraslm.text import special_tokens as st

    rows = [row for batch in inputs for row in np.asarray(batch)]
    prompts = []
    for row in rows:
        runs, current = [], []
        for token in [int(i) for i in row] + [st.PAD_ID]:
            if token < st.NUM_SPECIAL_TOKENS:
                runs.append(current)
                current = []
            else:
                current.append(token)
        best = max(runs, key=len)
        if best:
            prompts.append(best[:length])
        if len(prompts) == count:
            break
    if not prompts:
        raise ExportError("The check inputs hold no ordinary token ids to prompt with.")
    budget = max(1, min(CHECK_NEW_TOKENS, cache_length - max(map(len, prompts)) - 1))
    return prompts, budget


def _agreement(want, got):
    """Share of positions of `want` where `got` has the same item (1 when
    both are empty)."""
    if len(want) == 0 and len(got) == 0:
        return 1.0
    same = sum(a == b for a, b in zip(want, got))
    return same / max(len(want), 1)


#: What `keraslm generate` never produces: padding, unknown, mask.
BANNED_IDS = (0, 1, 4)


def _greedy(model, generator, prompts, max_new_tokens):
    """Greedy new ids of each prompt by `keraslm.generation.generate_ids`
    (one batch) and by the file's loop, with `keraslm generate`'s banned
    ids and no stop id."""
    from keraslm.generation import generate_ids

    keras_ids = generate_ids(model, prompts, max_new_tokens, banned_ids=BANNED_IDS)
    file_ids = []
    for prompt in prompts:
        generator.reset()
        file_ids.append(generator.generate_ids(prompt, max_new_tokens,
                                               banned_ids=BANNED_IDS))
    generator.reset()
    return keras_ids, file_ids


def _argmax_agreement(reference, run, inputs):
    same = total = 0
    for batch in inputs:
        want, got = np.asarray(reference(batch)).argmax(-1), np.asarray(run(batch)).argmax(-1)
        same += int(np.sum(want == got))
        total += want.size
    return same / max(total, 1)


def _decode_latency_ms(generator, prompt, steps=16):
    generator.reset()
    start = time.perf_counter()
    generator.append(prompt)
    prefill = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    for _ in range(steps):
        generator.step(prompt[-1])
    decode = (time.perf_counter() - start) * 1e3 / steps
    generator.reset()
    return prefill, decode


def _keras_step_ms(model, prompt, steps=8):
    """Median Keras `call_with_cache` time of one new token (eager)."""
    from keras import ops

    cache = model.empty_cache(1, len(prompt) + steps + 1)
    _, _, cache = model.call_with_cache(ops.convert_to_tensor([prompt], "int32"), cache, 0)
    times = []
    for index in range(steps):
        start = time.perf_counter()
        _, _, cache = model.call_with_cache(
            ops.convert_to_tensor([[prompt[-1]]], "int32"), cache, len(prompt) + index)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def write_generation_file(model, path, *, inputs, atol, quantize, cache_length,
                          prefill_lengths, min_agreement):
    """Converts and checks the generation file at `path` (steps 2 and 3 of
    the module docstring); returns `(ExportResult fields, generator)`."""
    from keraslm_tflite.convert import operators
    from keraslm_tflite.generation import TFLiteGenerator, convert_generation

    def converted(mode):
        try:
            return convert_generation(model, cache_length, prefill_lengths, quantize=mode)
        except Exception as error:  # noqa: BLE001 - the converter raises many types
            lines = str(error).strip().splitlines() or [""]
            line = next((line for line in lines if "error:" in line), lines[0])
            raise ExportError(f"The TFLite converter could not convert the generation "
                              f"graph (quantize={mode}): {type(error).__name__}: "
                              f"{line.strip()[:500]}") from error

    def write(target, content):
        with open(target, "wb") as handle:
            handle.write(content)

    reference = keras_reference(model)
    prompts, budget = _prompts(inputs, cache_length)
    content = converted("none")
    float_path = path if quantize == "none" else f"{path}.float32"
    write(float_path, content)
    try:
        float_generator = TFLiteGenerator(float_path)
        float_diff, shapes = check_parity(reference, float_generator, inputs, atol=atol,
                                          format="tflite generation (float32)")
        keras_ids, float_ids = _greedy(model, float_generator, prompts, budget)
        float_size = os.path.getsize(float_path)
    finally:
        if float_path != path and os.path.exists(float_path):
            os.remove(float_path)
    float_agreement = _agreement(sum(keras_ids, []), sum(float_ids, []))
    details = {
        "quantize": quantize,
        "signatures": [f"prefill_{n}" for n in prefill_lengths] + ["decode"],
        "prefill_lengths": list(prefill_lengths),
        "cache_length": cache_length,
        "num_layers": int(model.num_layers),
        "num_heads": int(model.num_heads),
        "head_dim": int(model.hidden_dim // model.num_heads),
        "vocabulary_size": int(model.vocabulary_size),
        "ops": operators(content),
        "requires": "LiteRT builtin ops only",
        "greedy_tokens": len(sum(keras_ids, [])),
        "greedy_prompts": prompts,
        "greedy_ids": keras_ids,
        "float32_greedy_agreement": float_agreement,
    }
    if quantize == "none":
        if keras_ids != float_ids:
            raise ExportParityError(
                f"tflite generation (float32) greedy ids differ from keraslm's: "
                f"{float_ids} vs {keras_ids} (agreement {float_agreement:.1%}).")
        generator, max_diff, tolerance = float_generator, float_diff, atol
        details["greedy_agreement"] = float_agreement
    else:
        quantized = converted(quantize)
        write(path, quantized)
        generator = TFLiteGenerator(path)
        details["ops"] = operators(quantized)
        max_diff, shapes = check_parity(reference, generator, inputs, atol=float("inf"),
                                        format=f"tflite generation ({quantize})")
        argmax = _argmax_agreement(reference, generator, inputs)
        _, quantized_ids = _greedy(model, generator, prompts, budget)
        details.update(
            size_float32_bytes=float_size,
            size_ratio=os.path.getsize(path) / float_size,
            float32_max_abs_diff=float_diff,
            argmax_agreement=argmax,
            greedy_agreement=_agreement(sum(keras_ids, []), sum(quantized_ids, [])),
            greedy_agreement_with_float32=_agreement(sum(float_ids, []),
                                                     sum(quantized_ids, [])))
        tolerance = None
        if argmax < min_agreement:
            raise ExportParityError(
                f"tflite generation ({quantize}) agrees with the Keras model's arg-max "
                f"on {argmax:.1%} of positions, below min_agreement={min_agreement:g} "
                f"(max |diff| {max_diff:.3g}).")
    details["runtime"] = _runtime_version()
    prefill_ms, decode_ms = _decode_latency_ms(generator, prompts[0])
    details.update(prefill_latency_ms=prefill_ms, decode_latency_ms_per_token=decode_ms,
                   keras_decode_latency_ms_per_token=_keras_step_ms(model, prompts[0]))
    fields = dict(max_abs_diff=max_diff, tolerance=tolerance, shapes_checked=shapes,
                  keras_latency_ms=details["keras_decode_latency_ms_per_token"],
                  runtime_latency_ms=decode_ms, details=details)
    return fields, generator


def _runtime_version():
    import importlib.metadata

    return f"ai_edge_litert {importlib.metadata.version('ai-edge-litert')}"


def _shapes_text(details):
    layers, heads, size = details["num_layers"], details["num_heads"], details["head_dim"]
    cache = details["cache_length"]
    return (
        f"Signatures: {', '.join(details['signatures'])} (N = "
        f"{', '.join(map(str, details['prefill_lengths']))} for prefill_N, 1 for decode).\n"
        f"Inputs:  tokens int32 [1, N]; input_pos int32 [N] (cache slot of each token, "
        f"consecutive);\n"
        f"         mask float32 [1, 1, N, {cache}] (additive: 0 = may attend to the slot, "
        f"-inf or a large negative number = not);\n"
        f"         kv_cache_k_i, kv_cache_v_i float32 [1, {cache}, {heads}, {size}] for "
        f"i = 0..{layers - 1}.\n"
        f"Outputs: logits float32 [1, N, {details['vocabulary_size']}]; the caches, "
        f"under the input names, with the new keys/values written at input_pos[0].\n"
        f"Cache length: {cache} slots (prompt + generated ids of a whole conversation).\n"
        f"Ops: LiteRT builtins only ({', '.join(details['ops'])}).\n"
        f"Quantization: {details['quantize']}.")


def export_tflite_generation(model, path, *, inputs, atol=1e-4, quantize="none",
                             cache_length=None, prefill_lengths=None, min_agreement=0.9):
    """Writes a Transformer LM's generation loop as a TFLite file with
    `prefill_{N}` and `decode` signatures and checks it in LiteRT.

    Args:
        model: a `keraslm.models.TransformerLM` (a transformer_lm run).
        path: str. Output `.tflite` file.
        inputs: list of id batches: the parity check's rows, and check
            prompts from their first ids.
        atol: float. Largest logit difference of the float32 file.
        quantize: `"none"`, `"float16"` or `"dynamic_int8"`.
        cache_length: int or None. Cache slots; defaults to the model's
            `max_sequence_length`.
        prefill_lengths: list of int or None. Defaults to those of
            `DEFAULT_PREFILL_LENGTHS` up to half the cache.
        min_agreement: float. Smallest arg-max agreement with Keras
            accepted for a quantized file. Defaults to `0.9`.

    Returns:
        `ExportResult`; `details` hold the signatures, the cache shape,
        the ops, `greedy_agreement` (with `keraslm.generation.generate_ids`)
        and, quantized, the sizes and agreements.

    Example:

    ```python
    result = keraslm.export(model, "out/lm.tflite", format="tflite-generation")
    generator = keraslm_tflite.generation.TFLiteGenerator("out/lm.tflite")
    ```
    """
    cache_length, prefill_lengths = _check_options(model, quantize, cache_length,
                                                   prefill_lengths, min_agreement)
    fields, _ = write_generation_file(
        model, path, inputs=inputs, atol=atol, quantize=quantize,
        cache_length=cache_length, prefill_lengths=prefill_lengths,
        min_agreement=min_agreement)
    details = fields["details"]
    write_readme(path, f"""keraslm generation file for LiteRT (TFLite), from {model.name}.

{_shapes_text(details)}

It takes token ids (keraslm's tokenizer of the run makes them; ship it beside).
Run it in Python, greedy, the prompt chunked over the prefill signatures:

    from keraslm_tflite.generation import TFLiteGenerator
    generator = TFLiteGenerator("{os.path.basename(readme_target(path))}")
    new_ids = generator.generate_ids(tokenizer.encode("ROMEO:"), 48, banned_ids=(0, 1, 4))
    print(tokenizer.decode(new_ids))
    more = generator.generate_ids(tokenizer.encode(" And"), 20)  # same conversation

Checked: logits within {atol:g} of Keras (float32 file) and greedy ids equal to
keraslm generate's ({details['greedy_agreement']:.0%} of {details['greedy_tokens']} ids).
""")
    return ExportResult(format="tflite-generation", path=str(path),
                        size_bytes=artifact_size(path), **fields)


def readme_target(path):
    from keraslm_tflite.readme import final_path

    return final_path(path)


def _check_texts(tokenizer, inputs, texts):
    if texts:
        return [text for text in texts if text][:20]
    rows = [row for batch in inputs for row in np.asarray(batch)]
    return [tokenizer.decode([int(i) for i in row if i != 0]) for row in rows[:4]]


def export_litertlm(model, path, *, inputs, atol=1e-4, tokenizer=None, quantize="none",
                    cache_length=None, prefill_lengths=None, min_agreement=0.9,
                    newline_at_eos=False, generate_options=None, texts=None):
    """Writes a `.litertlm` bundle of a Transformer LM for `litert_lm.Engine`
    and checks it there (see the module docstring).

    Args:
        model: a `keraslm.models.TransformerLM` (a transformer_lm run).
        path: str. Output `.litertlm` file.
        inputs: list of id batches (parity check rows and check prompts).
        atol: float. Largest logit difference of the float32 TFLite file.
        tokenizer: the run's keraslm tokenizer (`sentencepiece`,
            `character` or `byte`). Required.
        quantize: `"none"`, `"float16"` or `"dynamic_int8"`.
        cache_length, prefill_lengths, min_agreement: as for
            `export_tflite_generation`.
        newline_at_eos: bool. The run's documents are lines (`--split
            line`, what `keraslm generate` then does): for character and
            byte runs the end-of-text id is written as a newline and does
            not stop decoding. Otherwise (and for SentencePiece runs,
            whose model decodes it as nothing) it is the bundle's stop
            token. `keraslm export` sets it from
            the run's task.
        generate_options: dict or None. The task's generation options
            (`keraslm export` passes `task.generate_options()`); its
            `newline_at_eos` overrides the argument.
        texts: list of str or None. Real text for the tokenizer check;
            defaults to the decoded check inputs.

    Returns:
        `ExportResult`; `details` hold those of `tflite-generation`, the
        tokenizer kind and check, and `engine_agreement` (greedy text of
        `litert_lm.Engine` against `keraslm generate`).

    Example:

    ```python
    result = keraslm.export(model, "out/model.litertlm", format="litertlm",
                            tokenizer=tokenizer, newline_at_eos=True)
    import litert_lm
    engine = litert_lm.Engine("out/model.litertlm", cache_dir="/tmp")
    ```
    """
    from keraslm_tflite import litertlm

    newline_at_eos = bool((generate_options or {}).get("newline_at_eos", newline_at_eos))
    cache_length, prefill_lengths = _check_options(model, quantize, cache_length,
                                                   prefill_lengths, min_agreement)
    if tokenizer is None:
        raise ValueError("The litertlm exporter needs the run's tokenizer "
                         "(tokenizer=...): the bundle carries it. Received: tokenizer=None")
    try:
        litertlm.check_tokenizer(tokenizer)
    except ValueError as error:
        raise ExportError(str(error)) from None
    if tokenizer.vocabulary_size != model.vocabulary_size:
        raise ExportError(
            f"The tokenizer has {tokenizer.vocabulary_size} ids and the model "
            f"{model.vocabulary_size}: they are not from the same run.")
    try:
        import litert_lm  # noqa: F401
        import litert_lm_builder  # noqa: F401
    except ImportError as error:
        raise ExportError(f"The litertlm exporter needs litert-lm-api and "
                          f"litert-lm-builder ({error}). Install them with: pip install "
                          f"-e plugins/keraslm-tflite (or pip install keraslm-tflite)") from error

    from keraslm.text import special_tokens as st

    work = tempfile.mkdtemp(prefix=".litertlm-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        tflite_path = os.path.join(work, "model.tflite")
        fields, generator = write_generation_file(
            model, tflite_path, inputs=inputs, atol=atol, quantize=quantize,
            cache_length=cache_length, prefill_lengths=prefill_lengths,
            min_agreement=min_agreement)
        details = fields["details"]
        kind, tokenizer_path = litertlm.runtime_tokenizer(tokenizer, work, newline_at_eos)
        # A run of lines writes end of text as a newline and goes on, where
        # the bundle's tokenizer can write it so (character and byte runs;
        # a SentencePiece model decodes [SEP] as nothing, and a newline
        # piece would change the spaces after it): the runtime requires a
        # stop token, which is then padding (suppressed). Otherwise [SEP]
        # stops.
        writes_newline = newline_at_eos and kind == "hf_tokenizer_json"
        stop_ids = [st.PAD_ID] if writes_newline else [st.EOS_ID]
        suppress_ids = [st.PAD_ID, st.UNK_ID, st.MASK_ID]
        import keraslm

        litertlm.build_bundle(
            path, tflite_path=tflite_path, tokenizer_kind=kind,
            tokenizer_path=tokenizer_path,
            metadata_text=litertlm.llm_metadata(cache_length=cache_length,
                                                stop_ids=stop_ids,
                                                suppress_ids=suppress_ids),
            system_metadata={"Authors": "keraslm", "keraslm_version": keraslm.__version__,
                             "model": model.name, "tokenizer": tokenizer.type_name})
        details.update(tokenizer=kind, stop_ids=stop_ids, suppress_ids=suppress_ids,
                       start_id=None, newline_at_eos=bool(newline_at_eos),
                       writes_newline=writes_newline,
                       size_tflite_bytes=os.path.getsize(tflite_path))
        details.update(_engine_checks(tokenizer, path, inputs, texts, details,
                                      writes_newline))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not details["engine_prompts"]:
        raise ExportError("litertlm: no check prompt's text gives its ids back through "
                          "the tokenizer; the Engine's text could not be checked.")
    if quantize == "none" and details["engine_agreement"] < 1:
        raise ExportParityError(
            f"litertlm: litert_lm.Engine's greedy text differs from keraslm generate's "
            f"({details['engine_agreement']:.1%} of the characters equal): "
            f"{details['engine_texts']!r}.")
    details["runtime"] = f"{details['runtime']}; {_litert_lm_version()}"
    write_readme(path, _litertlm_readme(model, path, details))
    return ExportResult(format="litertlm", path=str(path), size_bytes=artifact_size(path),
                        **fields)


def _litert_lm_version():
    import importlib.metadata

    return f"litert-lm-api {importlib.metadata.version('litert-lm-api')}"


def _text(tokenizer, new_ids, newline_at_eos):
    """What `keraslm generate` writes for `new_ids`: the end-of-text id as a
    newline (`newline_at_eos`), else the text stops there."""
    from keraslm.text import special_tokens as st

    lines, line = [], []
    for token in new_ids:
        if token == st.EOS_ID:
            lines.append(line)
            line = []
            if not newline_at_eos:
                break
        else:
            line.append(token)
    else:
        lines.append(line)
    return "\n".join(tokenizer.decode(part) if part else "" for part in lines)


def _engine_checks(tokenizer, path, inputs, texts, details, newline_at_eos):
    """Tokenizer (id for id) and greedy text checks in `litert_lm.Engine`:
    its text from each check prompt against what `keraslm generate` writes
    for the Keras greedy ids already computed (prompts whose text gives
    their ids back), up to the first end of text where the bundle stops
    there."""
    from keraslm_tflite.litertlm import Engine

    checks = _check_texts(tokenizer, inputs, texts)
    with Engine(path) as engine:
        mismatched = [text for text in checks
                      if engine.tokenize(text) != tokenizer.encode(text)]
        if mismatched:
            text = mismatched[0]
            raise ExportParityError(
                f"litertlm: the runtime's tokenizer gives other ids than keraslm's on "
                f"{len(mismatched)} of {len(checks)} check texts; first {text[:60]!r}: "
                f"{engine.tokenize(text)[:20]} vs {tokenizer.encode(text)[:20]}.")
        prompts, want, got = [], [], []
        for ids, new_ids in zip(details["greedy_prompts"], details["greedy_ids"]):
            text = tokenizer.decode(ids)
            if tokenizer.encode(text) != ids:
                continue
            prompts.append(text)
            want.append(_text(tokenizer, new_ids, newline_at_eos))
            got.append(engine.generate([text], len(new_ids))[0])
    return {"tokenizer_check_texts": len(checks), "tokenizer_exact": True,
            "engine_prompts": prompts, "engine_texts": got,
            "engine_agreement": _agreement("".join(want), "".join(got))}


def _litertlm_readme(model, path, details):
    name = os.path.basename(readme_target(path))
    stop = (f"stops at id {details['stop_ids'][0]} ([SEP], end of text)"
            + (" (keraslm generate goes on past it for this run of lines, writing a "
               "newline; the SentencePiece model cannot write one: continue with a "
               "next turn)" if details["newline_at_eos"] else "")
            if not details["writes_newline"] else
            "does not stop at end of text: the run's documents are lines, and the "
            "end-of-text id is written as a newline (as keraslm generate does); its stop "
            "token is padding (id 0), which is suppressed, so it stops after "
            "max_output_tokens or when the cache is full")
    tokenizer = {"sentencepiece": "the run's SentencePiece model",
                 "hf_tokenizer_json": "an HF tokenizer.json giving keraslm's ids exactly"}
    return f"""keraslm LiteRT-LM bundle (.litertlm) for litert_lm.Engine, from {model.name}.

It takes text and returns text: the bundle holds {tokenizer[details['tokenizer']]}
(checked id for id against keraslm's on {details['tokenizer_check_texts']} texts), no start token
(keraslm's LMs are trained without one), suppressed ids {details['suppress_ids']} (padding,
unknown, mask), and {stop}.
Inside, the TFLite model (PREFILL_DECODE, float32 activations preferred):
{_shapes_text(details)}

Run it (pip install litert-lm-api==0.18.1), greedy, two turns of one conversation:

    import litert_lm, os
    os.makedirs("/tmp/litert_lm_cache", exist_ok=True)
    engine = litert_lm.Engine("{name}", cache_dir="/tmp/litert_lm_cache")
    session = engine.create_session(sampler_config=litert_lm.SamplerConfig(top_k=1),
                                    max_output_tokens=48)
    session.run_prefill(["ROMEO:"]); print(session.run_decode().texts[0])
    session.run_prefill([" And then"]); print(session.run_decode().texts[0])

Checked: greedy text equal to keraslm generate's on {len(details['engine_prompts'])} prompts
({details['engine_agreement']:.0%} of the characters), greedy ids of the TFLite model equal to
keraslm's ({details['greedy_agreement']:.0%} of {details['greedy_tokens']} ids).
The Python API takes and returns text; to feed ids, run the TFLite model with
keraslm_tflite.generation.TFLiteGenerator (keraslm export --format tflite-generation).
"""
