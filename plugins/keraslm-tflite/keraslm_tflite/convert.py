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
  came from, read from the names of the op's output tensors; where those
  name no layer (an op whose output is the model's output is named
  `StatefulPartitionedCall:0`), `ops_by_layer(model, spec, ...)` finds the
  op in the traced TensorFlow graph instead.
- `unsupported_ops(message)` reads, from a converter error, the TF ops that
  TFLite has neither as a builtin nor as a Select-TF kernel (`Erfinv`).

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
        representative: list of input batches, for `"int8"`. With a static
            `spec` length, each row is right-padded with 0 or cut to it.

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
            length = spec.shape[1] if len(spec.shape) > 1 else None

            def batches():
                for batch in representative:
                    for row in np.asarray(batch):
                        if length is not None:  # a static signature: pad or cut
                            row = np.pad(row[:length], (0, max(length - len(row), 0)))
                        yield [row[None].astype(spec.dtype.as_numpy_dtype)]
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


def _layer_path(name, layer_names):
    """The Keras layer path in a TensorFlow op or tensor name: the scopes up
    to the innermost one that `layer_names` holds, each given back its
    layer's name where TensorFlow added a call count (`lstm_0_1`). None when
    no scope is a layer."""
    import re

    def layer(component):
        plain = re.sub(r"_\d+$", "", component)
        return plain if component not in layer_names and plain in layer_names else component

    parts = [layer(part) for part in name.split(";")[0].split("/")[:-1]]
    known = [i for i, part in enumerate(parts) if part in layer_names]
    return "/".join(parts[:known[-1] + 1]) if known else None


def ops_by_layer(model, spec, op_types) -> dict:
    """`{TF op type: sorted layer paths}` of the ops of those types in the
    TensorFlow graph of `model` traced for `spec` (its functions included,
    e.g. a `while` body), for ops the converter did not name.

    Example:

    ```python
    ops_by_layer(model, tf.TensorSpec((None, None), tf.int32), ["Cosh"])
    # {'Cosh': ['functional/odd_layer']}
    ```
    """
    import tensorflow as tf

    layer_names = {layer.name for layer in model._flatten_layers()}
    function = tf.function(lambda token_ids: model(token_ids, training=False))
    graph = function.get_concrete_function(spec).graph.as_graph_def()
    nodes = list(graph.node) + [node for f in graph.library.function for node in f.node_def]
    found = {op: set() for op in op_types}
    for node in nodes:
        if node.op in found:
            found[node.op].add(_layer_path(node.name, layer_names) or node.name)
    return {op: sorted(paths) for op, paths in found.items()}


def flex_ops_by_layer(content, layer_names=(), model=None, spec=None) -> dict:
    """`{Flex op: sorted layer paths}` for every Select-TF op in the file.

    The layer path is the output tensor's name up to its last `/`, cut after
    the innermost component that `layer_names` holds. TensorFlow suffixes
    each scope with its call count (`lstm_0_1`); a component is given back
    its layer's name when `layer_names` holds it without the suffix
    (`lstmlm/recurrent_stack/lstm_0`). Where no output name holds a layer
    and `model` and `spec` are given, the op is looked up in the model's
    TensorFlow graph (`ops_by_layer`); otherwise the tensor name is kept.

    Example:

    ```python
    flex_ops_by_layer(content, [layer.name for layer in model._flatten_layers()])
    # {'FlexTensorListReserve': ['lstmlm/recurrent_stack/lstm_0'], ...}
    ```
    """
    names = set(layer_names)
    schema = _schema()
    flatbuffer = schema.Model.GetRootAs(content, 0)
    codes = {}
    for index in range(flatbuffer.OperatorCodesLength()):
        custom = flatbuffer.OperatorCodes(index).CustomCode()
        if custom and custom.decode().startswith("Flex"):
            codes[index] = custom.decode()
    found, unnamed = {}, {}
    for graph_index in range(flatbuffer.SubgraphsLength()):
        graph = flatbuffer.Subgraphs(graph_index)
        for op_index in range(graph.OperatorsLength()):
            op = graph.Operators(op_index)
            name = codes.get(op.OpcodeIndex())
            if name is None:
                continue
            layers = found.setdefault(name, set())
            for output in range(op.OutputsLength()):
                tensor = graph.Tensors(op.Outputs(output)).Name().decode()
                # `lstm_0/while/TensorArrayV2Write` is the op inside layer `lstm_0`.
                path = _layer_path(tensor, names)
                if path is None:
                    unnamed.setdefault(name, set()).add(tensor.split(";")[0])
                else:
                    layers.add(path)
    for name, tensors in unnamed.items():
        if found[name]:
            continue
        if model is not None and spec is not None:
            found[name] = set(ops_by_layer(model, spec, [name[len("Flex"):]])[name[len("Flex"):]])
        found[name] = found[name] or tensors
    return {name: sorted(layers) for name, layers in sorted(found.items())}


def unsupported_ops(message) -> list:
    """The TF ops a converter error says TFLite has no kernel for, neither
    builtin nor Select-TF (`"Custom ops: Erfinv, Asinh"` in the message).

    Example:

    ```python
    try:
        convert(model, spec)
    except Exception as error:
        unsupported_ops(str(error))  # ['Erfinv']
    ```
    """
    import re

    found = set()
    for line in re.findall(r"^Custom ops: (.*)$", message, flags=re.MULTILINE):
        found.update(op.strip() for op in line.split(",") if op.strip())
    found.update(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message))
    return sorted(found)
