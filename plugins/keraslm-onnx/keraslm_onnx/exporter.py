"""The `onnx` exporter: a Keras model to ONNX with tf2onnx, checked in onnxruntime."""

from keraslm.exporting import ExportError, finish

DEFAULT_OPSET = 17


def _erfc_handler(ctx, node, name, args):
    """Erfc(x) as 1 - Erf(x): exact GELU (Keras' default) lowers to Erfc in
    TensorFlow, which tf2onnx 1.17 cannot convert."""
    import numpy as np
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.output[0]))
    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(name),
                                  inputs=[one.output[0], node.output[0]])
    return node


def _install_hint(error):
    return ExportError(
        f"The onnx exporter needs tf2onnx, onnx and onnxruntime ({error}). "
        "Install them with: pip install keraslm-onnx"
    )


def export_onnx(model, path, *, inputs, atol=1e-4, opset=DEFAULT_OPSET):
    """Writes `model` as ONNX with dynamic batch and length, then checks it.

    The model is wrapped in a `tf.function` (`model(x, training=False)`) whose
    input signature keeps the model's free dimensions symbolic, and converted
    with `tf2onnx.convert.from_function`, so one file serves every batch size
    and sequence length. TensorFlow's `Erfc` (from exact GELU) is rewritten
    as `1 - Erf`, which tf2onnx cannot convert otherwise. The file is
    validated with `onnx.checker`, then run in onnxruntime (CPU) on `inputs`
    and compared with the Keras model through `keraslm.exporting.finish`;
    `model.onnx.README.txt` is written beside the file; the report's `details`
    hold the opset, the ONNX op types used and the
    onnxruntime and tf2onnx versions.

    Args:
        model: a built Keras model with a single input.
        path: str. Output `.onnx` file.
        inputs: list of input batches for the parity check.
        atol: float. Largest allowed absolute difference. Defaults to `1e-4`.
        opset: int. ONNX opset. Defaults to `17`.

    Example:

    ```python
    result = keraslm.export(model, "model.onnx", format="onnx", opset=17)
    ```
    """
    try:
        import numpy as np
        import onnx
        import onnxruntime
        import tensorflow as tf
        import tf2onnx
    except ImportError as error:
        raise _install_hint(error) from error

    if len(model.inputs) != 1:
        raise ExportError(
            "The onnx exporter handles models with one input. Received a model "
            f"with {len(model.inputs)} inputs."
        )
    spec = model.inputs[0]
    signature = [tf.TensorSpec(tuple(spec.shape), tf.as_dtype(str(spec.dtype)),
                               name="inputs")]

    @tf.function(input_signature=signature)
    def serve(x):
        return model(x, training=False)

    try:
        model_proto, _ = tf2onnx.convert.from_function(
            serve, input_signature=signature, opset=opset, output_path=str(path),
            custom_op_handlers={"Erfc": (_erfc_handler, [])},
        )
    except Exception as error:
        raise ExportError(
            f"tf2onnx could not convert the model (opset {opset}): "
            f"{type(error).__name__}: {error}"
        ) from error
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path),
                                           providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(batch):
        outputs = session.run(None, {input_name: np.asarray(batch)})
        return outputs[0] if len(outputs) == 1 else outputs

    ops = sorted({node.op_type for node in model_proto.graph.node})
    result = finish("onnx", path, model, run, inputs, atol, details={
        "opset": opset,
        "ops": ops,
        "onnxruntime": onnxruntime.__version__,
        "tf2onnx": tf2onnx.__version__,
    })
    from keraslm_onnx import readme

    readme.write_forward_readme(
        path, input_name, f"{spec.dtype} {list(spec.shape)}",
        ", ".join(f"{o.name} {list(o.shape)}" for o in session.get_outputs()), opset)
    return result
