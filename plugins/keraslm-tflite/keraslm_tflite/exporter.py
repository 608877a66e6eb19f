"""The `tflite` exporter: a Keras model to a LiteRT file, linted, quantized, checked.

What `export_tflite` does, in order:

1. Picks the input signature. Transformers and other models without
   recurrent layers get a dynamic one (`[-1, -1]`: any batch, any length).
   Models with LSTM/GRU layers get a static one (`[1, sequence_length]`): a
   dynamic-length RNN needs Select-TF tensor-list ops that LiteRT cannot
   run, while with a static shape it lowers to a builtin `WHILE`.
2. Converts the float32 model and lints its ops. A file that needs
   Select-TF (Flex) ops is refused, naming the ops and the layers they come
   from, unless `allow_select_ops=True`; then the report says the app must
   link the Flex delegate (and no parity check runs: no Python runtime here
   links it). A TF op with neither a builtin nor a Select-TF kernel
   (`Erfinv`) fails the conversion; the error names it and its layer.
3. Quantizes if asked (`float16`, `dynamic_int8`, `int8`). `int8` is
   refused up front for recurrent layers that loop over time: the
   converter's calibration of their `WHILE` loop crashes the process.
4. Runs the file in LiteRT on `inputs` and compares with Keras. A float32
   file must agree within `atol`. A quantized file cannot: the float32
   conversion is checked within `atol` first (the graph is right), then the
   quantized file must give finite outputs whose arg-max agrees with Keras
   on at least `min_agreement` of the positions; its largest difference,
   the agreement and the sizes are in the report.

Example:

```python
result = keraslm.export(model, "out/model.tflite", format="tflite",
                        quantize="dynamic_int8")
print(result.summary())
```
"""

import os

from keraslm.exporting import ExportError, ExportParityError, ExportResult, finish
from keraslm.exporting.parity import artifact_size, check_parity, keras_reference, median_latency_ms

from keraslm_tflite.readme import final_path, write_readme
from keraslm_tflite.convert import (
    QUANTIZE,
    convert,
    flex_ops_by_layer,
    operators,
    ops_by_layer,
    unsupported_ops,
)


def _recurrent_layers(model):
    import keras

    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.RNN)]


def _argmax_agreement(model, run, inputs):
    import numpy as np

    reference = keras_reference(model)
    same = total = 0
    for batch in inputs:
        want, got = np.asarray(reference(batch)), np.asarray(run(batch))
        same += int(np.sum(want.argmax(-1) == got.argmax(-1)))
        total += want.argmax(-1).size
    return same / max(total, 1)


def _refuse_flex(flex, recurrent):
    found = "; ".join(f"{op} (from {', '.join(layers)})" for op, layers in flex.items())
    hint = (" Recurrent layers export to builtins with a static shape "
            "(static_shape=True, the default for them; --sequence-length N sets "
            "the length)." if recurrent else "")
    return ExportError(
        f"The model needs Select-TF ops, which LiteRT's builtin runtime cannot run: "
        f"{found}.{hint} To export with these ops anyway, pass allow_select_ops=True "
        f"(--allow-select-ops); the app must then link the Flex delegate.")


def _unchecked(model, path, content, details):
    """A file with Select-TF ops, allowed by the user: written and linted but
    not run. No Python runtime on this stack links the Flex delegate
    (TensorFlow's `tf.lite.Interpreter` refuses Flex nodes too), so the
    report says the parity check is the app's to make."""
    _write(path, content)
    details.update(ops=operators(content), parity=(
        "not run: the file needs the Flex delegate, which neither ai_edge_litert "
        "nor tf.lite.Interpreter links here; check it in the app that links it"))
    _readme(model, path, details, "Not checked here: it needs the Flex delegate "
            "(Select-TF ops); link it in the app.")
    return ExportResult(format="tflite", path=str(path), size_bytes=artifact_size(path),
                        max_abs_diff=None, tolerance=None, shapes_checked=[],
                        keras_latency_ms=None, runtime_latency_ms=None, details=details)


def _readme(model, path, details, checked):
    """`<artifact>.README.txt`: what the file takes and returns, and how to run it."""
    import os

    shape = details["input_signature"]
    static = details["static_shape"]
    takes = (f"token ids int32 {shape} (one row of exactly {shape[1]} ids, right-padded "
             f"with 0; longer rows cut)" if static else
             "token ids int32 [batch, length], any batch and length (resize the input "
             "first)")
    output = model.outputs[0]
    returns = ", ".join(str(d if d is not None else "?") for d in output.shape)
    name = os.path.basename(final_path(path))
    write_readme(path, f"""keraslm TFLite (LiteRT) file of {model.name}: the forward pass.

Takes: {takes}. Id 0 is padding.
Returns: {output.dtype} [{returns}] (per the model's head: logits per token or per text).
One signature: input token_ids, one output; quantization: {details['quantize']}.
Ops: {details['requires']}{'' if not details.get('ops') else ' (' + ', '.join(details['ops']) + ')'}.
{checked}
Run it:

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    ids = np.array([[5, 17, 9]], "int32")  # tokenizer.encode(text), the run's tokenizer
    interpreter = Interpreter(model_path="{name}")
    {'' if static else 'interpreter.resize_tensor_input(0, ids.shape); '}interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], ids)  # ids: int32
    interpreter.invoke(); out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

Or keraslm_tflite.runtime.load("{name}")(ids). The tokenizer is the run's (RUN/tokenizer).
""")


def _write(path, content):
    with open(path, "wb") as handle:
        handle.write(content)


def export_tflite(model, path, *, inputs, atol=1e-4, quantize="none",
                  allow_select_ops=False, static_shape=None, sequence_length=None,
                  representative_inputs=None, min_agreement=0.9):
    """Writes `model` as a TFLite file and checks it in LiteRT.

    Args:
        model: a built Keras model with one integer input (token ids).
        path: str. Output `.tflite` file.
        inputs: list of input batches for the parity check.
        atol: float. Largest allowed absolute difference of the float32 file.
        quantize: `"none"`, `"float16"`, `"dynamic_int8"` or `"int8"`.
        allow_select_ops: bool. Keep Select-TF (Flex) ops instead of refusing.
        static_shape: bool or None. `None` picks static for models with
            recurrent layers and dynamic otherwise.
        sequence_length: int or None. Length of a static signature; defaults
            to the longest input in `inputs`.
        representative_inputs: list of batches measuring activation ranges
            for `"int8"` (defaults to `inputs`); give real data.
        min_agreement: float. Smallest arg-max agreement with Keras accepted
            for a quantized file. Defaults to `0.9`.

    Returns:
        `ExportResult`. Its `details` hold the ops, the signature, the
        runtime, and for quantized files the float32 size, the size ratio,
        the float32 file's difference and the arg-max agreement.

    Example:

    ```python
    result = keraslm.export(lstm_classifier, "out/model.tflite", format="tflite",
                            quantize="dynamic_int8", sequence_length=128)
    ```
    """
    if quantize not in QUANTIZE:
        raise ValueError(f"`quantize` must be one of {', '.join(QUANTIZE)}. "
                         f"Received: quantize={quantize!r}")
    if sequence_length is not None and (isinstance(sequence_length, bool) or not
                                        isinstance(sequence_length, int) or
                                        sequence_length < 1):
        raise ValueError("`sequence_length` must be a positive integer. "
                         f"Received: sequence_length={sequence_length!r}")
    if not 0 <= min_agreement <= 1:
        raise ValueError("`min_agreement` must be in [0, 1]. "
                         f"Received: min_agreement={min_agreement!r}")
    if len(model.inputs) != 1:
        raise ExportError("The tflite exporter handles models with one input. "
                          f"Received a model with {len(model.inputs)} inputs.")
    looped = [layer.name for layer in _recurrent_layers(model) if not layer.unroll]
    if quantize == "int8" and looped:
        # Measured: the converter's int8 calibration of the WHILE loop ends
        # the process with a segmentation fault (TF 2.21).
        raise ValueError(
            f"quantize='int8' is not supported for recurrent layers that loop over "
            f"time ({', '.join(looped)}): the TFLite converter crashes on their WHILE "
            f"loop. Use quantize='dynamic_int8' or 'float16', or build the layers "
            f"with unroll=True. Received: quantize='int8'")
    try:
        import numpy as np
        import tensorflow as tf

        from keraslm_tflite.runtime import TFLiteRunner
    except ImportError as error:
        raise ExportError(f"The tflite exporter needs ai-edge-litert ({error}). "
                          "Install it with: pip install keraslm-tflite") from error

    spec = model.inputs[0]
    static = bool(_recurrent_layers(model)) if static_shape is None else bool(static_shape)
    if static:
        length = sequence_length or max(np.shape(batch)[1] for batch in inputs)
        shape = (1, length)
    else:
        shape = tuple(spec.shape)
    signature = tf.TensorSpec(shape, tf.as_dtype(str(spec.dtype)), name="token_ids")
    layer_names = [layer.name for layer in model._flatten_layers()]

    def converted(mode, representative=None):
        try:
            content = convert(model, signature, quantize=mode,
                              representative=representative)
        except Exception as error:  # noqa: BLE001 - the converter raises many types
            missing = unsupported_ops(str(error))
            if missing:
                found = "; ".join(f"{op} (from {', '.join(layers)})" for op, layers in
                                  ops_by_layer(model, signature, missing).items())
                raise ExportError(
                    f"The model uses TF ops that TFLite has neither as a builtin nor "
                    f"as a Select-TF op: {found}. Write those layers with other ops "
                    f"(keras.ops that lower to TFLite builtins).") from error
            lines = str(error).strip().splitlines() or [""]
            line = next((line for line in lines if "error:" in line), lines[0])
            raise ExportError(f"The TFLite converter could not convert the model "
                              f"(quantize={mode}): {type(error).__name__}: "
                              f"{line.strip()[:500]}") from error
        flex = flex_ops_by_layer(content, layer_names, model, signature)
        if flex and not allow_select_ops:
            raise _refuse_flex(flex, bool(_recurrent_layers(model)))
        return content, flex

    content, flex = converted("none")
    details = {
        "quantize": quantize,
        "input_signature": [d if d is not None else -1 for d in shape],
        "static_shape": static,
        "select_tf_ops": flex,
        "requires": ("the Flex delegate (Select-TF ops)" if flex
                     else "LiteRT builtin ops only"),
    }
    if flex:
        return _unchecked(model, path, content if quantize == "none"
                          else converted(quantize, representative_inputs or inputs)[0],
                          details)
    if quantize == "none":
        _write(path, content)
        run = TFLiteRunner(path)
        details.update(ops=run.operators, runtime=run.runtime,
                       argmax_agreement=_argmax_agreement(model, run, inputs))
        result = finish("tflite", path, model, run, inputs, atol, details=details)
        _readme(model, path, details, f"Checked in {run.runtime}: outputs within "
                f"{atol:g} of Keras (max |diff| {result.max_abs_diff:.2e}).")
        return result

    # Quantized: the float32 conversion must be right first.
    float_path = f"{path}.float32"
    try:
        _write(float_path, content)
        float_run = TFLiteRunner(float_path)
        float_diff, _ = check_parity(keras_reference(model), float_run, inputs,
                                     atol=atol, format="tflite (float32)")
        float_size = os.path.getsize(float_path)
    finally:
        if os.path.exists(float_path):
            os.remove(float_path)
    quantized, flex = converted(quantize, representative_inputs or inputs)
    _write(path, quantized)
    run = TFLiteRunner(path)
    max_diff, shapes = check_parity(keras_reference(model), run, inputs,
                                    atol=float("inf"), format=f"tflite ({quantize})")
    agreement = _argmax_agreement(model, run, inputs)
    size = artifact_size(path)
    details.update(ops=run.operators, runtime=run.runtime, argmax_agreement=agreement,
                   size_float32_bytes=float_size, size_ratio=size / float_size,
                   float32_max_abs_diff=float_diff, select_tf_ops=flex)
    if agreement < min_agreement:
        raise ExportParityError(
            f"tflite ({quantize}) export agrees with the Keras model's arg-max on "
            f"{agreement:.1%} of positions, below min_agreement={min_agreement:g} "
            f"(max |diff| {max_diff:.3g}).")
    largest = max(inputs, key=lambda b: np.size(b))
    reference = keras_reference(model)
    _readme(model, path, details, f"Checked in {run.runtime}: the float32 conversion "
            f"within {atol:g} of Keras; this {quantize} file agrees with Keras' arg-max on "
            f"{agreement:.1%} of positions, {size / float_size:.2f}x the float32 size.")
    return ExportResult(
        format="tflite", path=str(path), size_bytes=size, max_abs_diff=max_diff,
        tolerance=None, shapes_checked=shapes,
        keras_latency_ms=median_latency_ms(reference, largest),
        runtime_latency_ms=median_latency_ms(run, largest), details=details)
