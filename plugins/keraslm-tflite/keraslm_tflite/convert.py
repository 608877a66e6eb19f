"""Keras model -> TFLite flatbuffer: frozen weights, quantization, op lint.

- `convert(model, spec, quantize=..., representative=...)` converts one
  `tf.function` of the model in inference mode. The module handed to the
  converter tracks the underlying `tf.Variable` of each Keras variable
  (`v.value`): tracking the Keras variables themselves leaves the weights
  unfrozen (uninitialised VAR_HANDLE ops, NaN outputs; ../shared/DESIGN.md).
  Select-TF ops are allowed during conversion so that a model needing them
  still converts and can be linted; the exporter refuses the file unless the
  user allowed them.
- `operators(content)` lists the ops a file needs, read from its flatbuffer
  (`ai_edge_litert.schema_py_generated`); Select-TF ops appear as custom
  ops named `Flex<TF op>`.
- `flex_ops_by_layer(content)` maps each Flex op to the Keras layer path it
  came from, read from the names of the op's output tensors.

Example:

```python
content = convert(model, tf.TensorSpec((None, None), tf.int32, name="token_ids"),
                  quantize="dynamic_int8")
operators(content)   # ['ADD', 'BATCH_MATMUL', ..., 'FULLY_CONNECTED', ...]
```
"""

QUANTIZE = ("none", "float16", "dynamic_int8", "int8")


def _converter(model, spec, *, lower_tensor_lists=True):
    import tensorflow as tf

    module = tf.Module()
    module.frozen = [v.value for v in model.variables]  # tf.Variables: folded
    function = tf.function(lambda token_ids: model(token_ids, training=False))
    concrete = function.get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    if not lower_tensor_lists:
        converter._experimental_lower_tensor_list_ops = False
    return converter


def convert(model, spec, *, quantize="none", representative=None):
    """Converts `model` for the input `spec` and returns the flatbuffer bytes.

    Args:
        model: a built Keras model with one input.
        spec: `tf.TensorSpec` of the input (`None` for a free dimension).
        quantize: one of `QUANTIZE`. `"float16"` stores weights as float16;
            `"dynamic_int8"` stores weights as int8 and quantizes activations
            at run time; `"int8"` quantizes weights and activations with
            ranges measured on `representative` (inputs and outputs stay as
            the model's: int32 ids in, float logits out).
        representative: list of input batches, for `"int8"`.

    Example:

    ```python
    content = convert(model, tf.TensorSpec((1, 64), tf.int32), quantize="float16")
    ```
    """
    import numpy as np
    import tensorflow as tf

    def configured(**kwargs):
        converter = _converter(model, spec, **kwargs)
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            def batches():
                for batch in representative:
                    for row in np.asarray(batch):
                        yield [row[None]]
            converter.representative_dataset = batches
        return converter

    try:
        return configured().convert()
    except Exception as error:  # noqa: BLE001 - retried below, then re-raised
        if "tensor list ops" not in str(error):
            raise
    # Dynamic-shape RNNs: tensor lists cannot be lowered to builtins; keep
    # them as Select-TF ops so the lint can name them.
    return configured(lower_tensor_lists=False).convert()


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def operators(content) -> list:
    """Sorted names of the ops a TFLite file uses (builtins by their TFLite
    name, custom ops by their custom code, e.g. `FlexTensorListReserve`).

    Example:

    ```python
    operators(open("model.tflite", "rb").read())  # ['ADD', 'FULLY_CONNECTED', ...]
    ```
    """
    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    found = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            found.add(code.CustomCode().decode())
        else:
            found.add(names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(found)


def flex_ops_by_layer(content, layer_names=()) -> dict:
    """`{Flex op: sorted layer paths}` for every Select-TF op in the file.

    The layer path is the output tensor's name up to its last `/`, cut after
    the innermost component that `layer_names` holds. TensorFlow suffixes
    each scope with its call count (`lstm_0_1`); a component is given back
    its layer's name when `layer_names` holds it without the suffix
    (`lstmlm/recurrent_stack/lstm_0`).

    Example:

    ```python
    flex_ops_by_layer(content)  # {'FlexTensorListReserve': ['lstmlm/.../lstm_0']}
    ```
    """
    import re

    names = set(layer_names)

    def layer(component):
        plain = re.sub(r"_\d+$", "", component)
        return plain if component not in names and plain in names else component

    schema = _schema()
    model = schema.Model.GetRootAs(content, 0)
    codes = {}
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        custom = code.CustomCode()
        if custom and custom.decode().startswith("Flex"):
            codes[index] = custom.decode()
    found = {}
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for op_index in range(graph.OperatorsLength()):
            op = graph.Operators(op_index)
            name = codes.get(op.OpcodeIndex())
            if name is None:
                continue
            layers = found.setdefault(name, set())
            for output in range(op.OutputsLength()):
                tensor = graph.Tensors(op.Outputs(output)).Name().decode()
                tensor = tensor.split(";")[0]
                path = tensor.rsplit("/", 1)[0] if "/" in tensor else tensor
                parts = [layer(part) for part in path.split("/")]
                # Up to the innermost layer: `lstm_0/while/TensorArrayV2Write`
                # is the op inside layer `lstm_0`.
                known = [i for i, part in enumerate(parts) if part in names]
                layers.add("/".join(parts[:known[-1] + 1] if known else parts))
    return {name: sorted(layers) for name, layers in sorted(found.items())}
