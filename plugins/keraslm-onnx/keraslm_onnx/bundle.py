"""The `onnx-genai` exporter: a folder onnxruntime-genai loads and generates from.

```
model.genai/
  decoder.onnx           past/present decoder (keraslm_onnx.decoder), float32 or int8
  genai_config.json      model type "decoder", ids, sizes, input/output names, search
  tokenizer.json         where the keraslm tokenizer can be written (see README.txt)
  tokenizer_config.json
  keraslm_tokenizer/     the run's own tokenizer (keraslm.text.load_tokenizer)
  README.txt             inputs, outputs, cache, how to run it
```

Checks, before the folder is kept: the decoder's logits equal
`call_with_cache` (prefill of left-padded prompts, then single tokens)
within `atol`; onnxruntime-genai loads the folder and its greedy ids equal
the onnxruntime loop's (`keraslm_onnx.generation.greedy`); the runtime's
tokenizer is compared with keraslm's id for id on the texts of the parity
inputs. With `quantize="dynamic_int8"` the decoder is quantized with
`onnxruntime.quantization.quantize_dynamic`; the report gives both sizes
and the greedy agreement with the float32 decoder.

Example:

```python
result = keraslm.export(model, "out/model.genai", format="onnx-genai",
                        tokenizer=tokenizer)
```

```bash
keraslm export runs/lm --format onnx-genai
keraslm export runs/lm --format onnx-genai --quantize dynamic_int8 -o out/lm-int8.genai
```
"""

import json
import os

import numpy as np

from keraslm.exporting import ExportError, ExportParityError, ExportResult
from keraslm.text import special_tokens as st

QUANTIZE = ("none", "dynamic_int8")
#: New ids generated in the bundle checks (runtime against the onnxruntime loop,
#: int8 against float32).
CHECK_TOKENS = 24


def check_options(model, tokenizer, quantize):
    """One-line errors for what the exporter cannot take, before converting."""
    from keraslm_onnx.decoder import check_decoder_model

    check_decoder_model(model, "onnx-genai")
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"`quantize` must be one of {', '.join(QUANTIZE)} for the "
                          f"onnx-genai exporter. Received: quantize={quantize!r}")
    if tokenizer is not None and tokenizer.vocabulary_size != model.vocabulary_size:
        raise ExportError(
            f"The tokenizer has {tokenizer.vocabulary_size} ids and the model "
            f"{model.vocabulary_size}: they are not from the same run.")


def _prompts(inputs, count=3):
    """Prompts of different lengths cut from the parity inputs (padding
    dropped), for the decoder and runtime checks."""
    rows = [np.asarray(row) for batch in inputs for row in np.asarray(batch)]
    rows = [row[row != 0] for row in rows]
    rows = [row for row in rows if len(row)][:count]
    if not rows:
        raise ExportError("The onnx-genai exporter needs parity inputs with at least "
                          "one non-padding id.")
    longest = max(len(row) for row in rows)
    return [row[:max(1, longest - 5 * index)].astype(int).tolist()
            for index, row in enumerate(rows)]


def _leading_agreement(a, b):
    same = 0
    for x, y in zip(a, b):
        if x != y:
            break
        same += 1
    return same


def export_onnx_genai(model, path, *, inputs, atol=1e-4, tokenizer=None,
                      generate_options=None, quantize=None, opset=17):
    """Writes an onnxruntime-genai folder for a `TransformerLM` and checks it.

    Args:
        model: a float32 `keraslm.models.TransformerLM`.
        path: str. The folder to write.
        inputs: list of id batches; prompts for the checks are cut from them.
        atol: float. Largest allowed logits difference. Defaults to `1e-4`.
        tokenizer: keraslm tokenizer or None. Its ids set bos/eos/pad and the
            banned ids; written as `tokenizer.json` where the runtime can
            read it, and saved as `keraslm_tokenizer/` always.
        generate_options: dict or None. The task's generation options;
            `newline_at_eos=True` (a line-per-document LM) makes generation
            go on through end-of-text, written as a line break, as
            `keraslm generate` does.
        quantize: `"none"` or `"dynamic_int8"`. Defaults to `None` (float32).
        opset: int. Defaults to `17`.

    Returns:
        `ExportResult`; `details` holds the names, sizes, the runtime
        agreement, the tokenizer check and, quantized, the float32 size and
        greedy agreement.

    Example:

    ```python
    result = keraslm.export(model, "out/model.genai", format="onnx-genai",
                            tokenizer=tokenizer, quantize="dynamic_int8")
    result.details["greedy_agreement"]
    ```
    """
    try:
        import onnxruntime  # noqa: F401
        import onnxruntime_genai  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ExportError(f"The onnx-genai exporter needs tf2onnx, onnxruntime and "
                          f"onnxruntime-genai ({error}). Install them with: pip install "
                          f"keraslm-onnx onnxruntime-genai==0.18.0") from error
    from keraslm_onnx import decoder, genai, generation, readme, tokenizer_json

    check_options(model, tokenizer, quantize)
    quantized = quantize == "dynamic_int8"
    newline_at_eos = bool((generate_options or {}).get("newline_at_eos"))
    banned = (st.PAD_ID, st.MASK_ID)  # never labels: masked in the bundle's logits
    loop_banned = (st.PAD_ID, st.UNK_ID, st.MASK_ID)  # as keraslm generate bans them
    os.makedirs(path, exist_ok=True)
    float_path = os.path.join(path, "decoder.float32.onnx" if quantized
                              else genai.DECODER_FILENAME)
    decoder.convert_decoder(model, float_path, opset=opset, banned_ids=banned)
    float_session = generation.session(float_path)
    prompts = _prompts(inputs)
    max_diff = decoder.check_decoder(model, float_session, prompts, steps=3, atol=atol,
                                     banned_ids=banned)
    details = {"opset": opset, "inputs": decoder.input_names(model.num_layers),
               "outputs": decoder.output_names(model.num_layers),
               **decoder.dimensions(model), "banned_in_logits": list(banned),
               "quantize": quantize or "none"}
    stop_ids = () if newline_at_eos else (st.EOS_ID,)
    float_ids = generation.greedy(float_session, prompts, CHECK_TOKENS,
                                  stop_ids=stop_ids, banned_ids=loop_banned)
    bundle_decoder = os.path.join(path, genai.DECODER_FILENAME)
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(float_path, bundle_decoder, weight_type=QuantType.QInt8)
        details["float32_size_bytes"] = os.path.getsize(float_path)
        details["int8_size_bytes"] = os.path.getsize(bundle_decoder)
        details["size_ratio"] = details["int8_size_bytes"] / details["float32_size_bytes"]
        os.remove(float_path)
        int8_ids = generation.greedy(bundle_decoder, prompts, CHECK_TOKENS,
                                     stop_ids=stop_ids, banned_ids=loop_banned)
        agreement = [_leading_agreement(a, b) for a, b in zip(float_ids, int8_ids)]
        positions = [(x == y) for a, b in zip(float_ids, int8_ids) for x, y in zip(a, b)]
        details["argmax_agreement"] = float(np.mean(positions)) if positions else 1.0
        details["greedy_agreement"] = {
            "new_tokens": CHECK_TOKENS, "leading_equal_ids": agreement,
            "identical_prompts": sum(a == b for a, b in zip(float_ids, int8_ids)),
            "prompts": len(prompts)}
        float_ids = int8_ids

    # With newline_at_eos the runtime must not stop at end-of-text: its eos
    # is the padding id, which the decoder never picks.
    eos_id = st.PAD_ID if newline_at_eos else st.EOS_ID
    config = genai.genai_config(decoder.dimensions(model), bos_id=st.BOS_ID,
                                eos_id=eos_id, pad_id=st.PAD_ID)
    _write_json(os.path.join(path, "genai_config.json"), config)
    tokenizer_note = _write_tokenizer(path, tokenizer, newline_at_eos)
    runtime_ids = genai.greedy(path, prompts, CHECK_TOKENS, eos_id=eos_id)
    if runtime_ids != float_ids:
        raise ExportParityError(
            f"onnxruntime-genai's greedy ids differ from the onnxruntime loop's on "
            f"the same decoder (prompts of lengths {[len(p) for p in prompts]}): "
            f"{runtime_ids} vs {float_ids}.")
    details["runtime_greedy_equal"] = {"prompts": len(prompts), "new_tokens": CHECK_TOKENS}
    if tokenizer is not None and tokenizer_note["written"]:
        # The texts of every parity input row (real text cut from the run's data).
        texts = [tokenizer.decode([int(i) for i in row if i > st.MASK_ID])
                 for batch in inputs for row in np.asarray(batch)]
        texts = [text for text in texts if text]
        matching, total, first = tokenizer_json.check_tokenizer(tokenizer, path, texts)
        tokenizer_note.update(matching_texts=matching, checked_texts=total)
        if first is not None:
            tokenizer_note["first_mismatch"] = {"text": first[0], "keraslm": first[1][:20],
                                                "runtime": first[2][:20]}
            tokenizer_note["exact"] = False
        else:
            tokenizer_note["exact"] = True
    details["tokenizer"] = tokenizer_note
    details["eos_token_id"] = eos_id
    readme.write_genai_readme(path, details, newline_at_eos)

    latency = _latency(model, float_session if not quantized
                       else generation.session(bundle_decoder), prompts[0])
    return ExportResult(
        format="onnx-genai", path=str(path),
        size_bytes=sum(os.path.getsize(os.path.join(root, name))
                       for root, _, names in os.walk(path) for name in names),
        max_abs_diff=max_diff, tolerance=None if quantized else atol,
        shapes_checked=[[len(prompts), max(len(p) for p in prompts)]],
        keras_latency_ms=latency[0], runtime_latency_ms=latency[1], details=details)


def _write_json(path, document):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False, indent=1)


def _write_tokenizer(path, tokenizer, newline_at_eos):
    """Writes tokenizer.json/tokenizer_config.json where possible and the
    keraslm tokenizer always; returns what was written and why not."""
    from keraslm_onnx import tokenizer_json

    if tokenizer is None:
        return {"written": False, "reason": "no tokenizer was given; feed ids"}
    tokenizer.save(os.path.join(path, "keraslm_tokenizer"))
    document, reason = tokenizer_json.tokenizer_json(tokenizer, newline_at_eos)
    if document is None:
        return {"written": False, "reason": f"the runtime tokenizer cannot express {reason}"}
    _write_json(os.path.join(path, "tokenizer.json"), document)
    _write_json(os.path.join(path, "tokenizer_config.json"),
                tokenizer_json.tokenizer_config(tokenizer))
    return {"written": True, "type": tokenizer.type_name}


def _latency(model, session, prompt):
    """Median ms of one forward pass of `prompt` in Keras and in onnxruntime."""
    from keraslm.exporting import median_latency_ms
    from keraslm_onnx.generation import OnnxDecoder

    runner = OnnxDecoder(session)
    batch = np.asarray([prompt], "int32")
    return (median_latency_ms(lambda b: np.asarray(model(b, training=False)), batch),
            median_latency_ms(lambda b: runner.prefill(b.tolist())[0], batch))


def load_runtime(path):
    """`run(batch)`: the logits of a bundle's decoder for a batch of
    (right-padded) id rows, from an empty cache; `keraslm export` scores a
    quantized bundle's bits per character with it."""
    from keraslm_onnx.generation import OnnxDecoder, session

    runner = OnnxDecoder(session(os.path.join(path, "decoder.onnx")))

    def run(batch):
        batch = np.asarray(batch, "int64")
        mask = (batch != 0).astype("int64")
        rows = len(batch)
        empty = np.zeros((rows, runner.num_heads, 0, runner.head_dim), "float32")
        feed = {"input_ids": batch, "attention_mask": mask,
                "position_ids": np.maximum(np.cumsum(mask, axis=1) - 1, 0)}
        feed.update({name: empty for name in runner.past_names})
        return runner._run(feed)[0]

    return run
