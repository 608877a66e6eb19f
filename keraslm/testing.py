"""Test helpers for keraslm layers and models, usable by plugin authors too.

Two checks, in the spirit of keras-hub's test case:

- `run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape)`
  builds the layer, calls it eagerly and symbolically, round-trips its config
  through JSON, trains it one step inside a `keras.Model` (with
  `jit_compile=True` by default), compares compiled and eager outputs, and
  runs it under the `mixed_float16` and `mixed_bfloat16` dtype policies
  (float32 variables, no NaN/Inf, outputs close to float32 ones).
- `run_model_saving_test(model, input_data)` saves a model as `.keras`,
  loads it back and checks the outputs are identical.

Both use `keras.ops` and work on any Keras backend. Two more check what
plugins add, on the TensorFlow backend:

- `run_task_test(task_cls, train=..., valid=...)` checks a task's
  declarations, trains it for a few steps through `keraslm.train`, and checks
  that it learned, that its evaluation reports its declared metrics, that
  the run directory reloads to the same metrics, and that its sample inputs
  feed the model.
- `run_exporter_test(format, model, inputs)` exports a model with a
  registered exporter and checks the artifact, the report and the parity.

All raise `AssertionError` with a message on failure, so they fit into
pytest or unittest alike.

Example:

```python
import numpy as np
import keraslm
from keraslm.testing import run_layer_test

def test_my_layer():
    run_layer_test(
        keraslm.layers.FeedForward,
        init_kwargs={"intermediate_dim": 8},
        input_data=np.random.uniform(size=(2, 3, 4)).astype("float32"),
        expected_output_shape=(2, 3, 4),
    )
```
"""

import json
import os
import tempfile

import keras
import numpy as np
from keras import ops

__all__ = ["run_exporter_test", "run_layer_test", "run_model_saving_test",
           "run_task_test"]

MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    call_kwargs=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    run_training_check=True,
    run_jit_check=True,
    run_mixed_precision_check=True,
    mixed_precision_tolerance=0.1,
    atol=1e-5,
):
    """Runs the standard checks every keraslm layer should pass.

    Checks, in order:

    1. Eager call: output shapes equal `expected_output_shape`, and the
       weight counts equal the expected ones (when given).
    2. Config: `get_config()` survives a JSON round trip through
       `keras.saving.serialize_keras_object`/`deserialize_keras_object`; the
       revived layer with the original weights gives the same outputs.
    3. Symbolic call on `keras.Input`s gives the expected shapes (batch
       included).
    4. Training: a `keras.Model` around the layer (first output) fits one
       step of MSE towards zeros with SGD; the loss is finite and some
       trainable weight changes. With `run_jit_check`, the model is compiled
       with `jit_compile=True` and `predict` must match the eager call.
    5. Mixed precision: for `mixed_float16` and `mixed_bfloat16`, a layer
       with the same weights keeps float32 variables, gives float outputs in
       the compute dtype or float32 without NaN/Inf, within
       `mixed_precision_tolerance` (relative to the output scale) of the
       float32 outputs, and every sublayer carries the same dtype policy.

    Args:
        layer_cls: the layer class.
        init_kwargs: dict. Constructor arguments.
        input_data: a tensor or numpy array, passed as the first call
            argument, or a dict of tensors passed as keyword arguments
            (`{"decoder_sequence": x, "encoder_sequence": y}`).
        expected_output_shape: a shape tuple, or a (nested) tuple/list of
            shapes when the layer returns several tensors.
        call_kwargs: dict. Extra non-tensor call arguments (e.g.
            `{"use_causal_mask": True}`). Defaults to `None`.
        expected_num_trainable_weights: int or `None` (not checked).
        expected_num_non_trainable_weights: int or `None` (not checked).
        run_training_check: bool. Defaults to `True`; skipped for layers
            without trainable weights.
        run_jit_check: bool. Whether the training/predict model is compiled
            with `jit_compile=True`. Defaults to `True`.
        run_mixed_precision_check: bool. Defaults to `True`.
        mixed_precision_tolerance: float. Tolerance of the mixed precision
            outputs relative to `max(1, max |float32 output|)`.
            Defaults to `0.1`.
        atol: float. Tolerance of revived/compiled outputs vs eager ones.
            Defaults to `1e-5`.

    Returns:
        The eagerly built layer.

    Example:

    ```python
    import numpy as np
    import keraslm
    from keraslm.testing import run_layer_test

    run_layer_test(
        keraslm.layers.TransformerDecoderBlock,
        init_kwargs={"num_heads": 2, "intermediate_dim": 8},
        input_data={
            "decoder_sequence": np.random.uniform(size=(2, 4, 8)),
            "encoder_sequence": np.random.uniform(size=(2, 5, 8)),
        },
        expected_output_shape=(2, 4, 8),
    )
    ```
    """
    call_kwargs = dict(call_kwargs or {})
    input_data = _to_float32(input_data)

    # 1. Eager call.
    layer = layer_cls(**init_kwargs)
    output = _call(layer, input_data, call_kwargs)
    _assert_shapes(output, expected_output_shape, "eager call")
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"Expected {expected_num_trainable_weights} trainable weights, "
            f"found {len(layer.trainable_weights)}: "
            f"{[w.path for w in layer.trainable_weights]}"
        )
    if expected_num_non_trainable_weights is not None:
        found = len(layer.non_trainable_weights)
        assert found == expected_num_non_trainable_weights, (
            f"Expected {expected_num_non_trainable_weights} non-trainable "
            f"weights, found {found}"
        )

    # 2. Config round trip through JSON.
    config = layer.get_config()
    serialized = json.dumps(keras.saving.serialize_keras_object(layer))
    revived = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert type(revived) is type(layer), (
        f"Deserialized a {type(revived).__name__}, expected "
        f"{type(layer).__name__}. Is the class registered with "
        "`keras.saving.register_keras_serializable`?"
    )
    assert _json_normalize(revived.get_config()) == _json_normalize(config), (
        "get_config() changed through from_config():\n"
        f"before: {config}\nafter:  {revived.get_config()}"
    )
    if layer.weights:
        _call(revived, input_data, call_kwargs)
        revived.set_weights(layer.get_weights())
        _assert_close(
            _call(revived, input_data, call_kwargs), output, atol,
            "revived layer vs original",
        )

    # 3. Symbolic call.
    symbolic_inputs = _symbolic_inputs(input_data)
    symbolic_layer = layer_cls(**init_kwargs)
    symbolic_output = _call(symbolic_layer, symbolic_inputs, call_kwargs)
    _assert_shapes(symbolic_output, expected_output_shape, "symbolic call")

    # 4. Training step, under XLA when asked.
    if run_training_check and symbolic_layer.trainable_weights:
        _run_training_step(
            symbolic_layer, symbolic_inputs, symbolic_output, input_data,
            run_jit_check, atol,
        )

    # 5. Mixed precision.
    if run_mixed_precision_check:
        for policy in MIXED_PRECISION_POLICIES:
            _run_mixed_precision_check(
                layer_cls, init_kwargs, input_data, call_kwargs, layer,
                output, policy, mixed_precision_tolerance,
            )
    return layer


def run_model_saving_test(model, input_data, atol=1e-6):
    """Checks that a `.keras` round trip of `model` gives identical outputs.

    Saves `model` to a temporary `.keras` file, loads it with
    `keras.saving.load_model` and compares class, config and the outputs on
    `input_data` (a tensor, or a dict/list for multi-input models).

    Args:
        model: a built `keras.Model`.
        input_data: inputs for `model(input_data)`.
        atol: float. Tolerance on the outputs. Defaults to `1e-6`.

    Returns:
        The restored model.

    Example:

    ```python
    import keras
    import numpy as np
    import keraslm
    from keraslm.testing import run_model_saving_test

    inputs = keras.Input((8,), dtype="int32")
    x = keraslm.layers.TokenAndPositionEmbedding(50, 8, 16)(inputs)
    x = keraslm.layers.TransformerDecoderBlock(2, 32)(x)
    model = keras.Model(inputs, x)
    run_model_saving_test(model, np.random.randint(1, 50, (2, 8)))
    ```
    """
    output = model(input_data, training=False)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    assert type(restored) is type(model), (
        f"Loaded a {type(restored).__name__}, expected {type(model).__name__}"
    )
    assert _json_normalize(restored.get_config()) == _json_normalize(
        model.get_config()
    ), "The loaded model's config differs from the saved model's config"
    _assert_close(
        restored(input_data, training=False), output, atol,
        "loaded model vs saved model",
    )
    return restored


TINY_MODEL = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}


def run_task_test(task_cls, train, valid=None, test=None, *, output_dir=None,
                  steps=60, min_loss_drop=0.3, model_options=None, **options):
    """Checks a task end to end, as `keraslm train --task NAME` runs it.

    1. Declarations: `name` is registered in `keraslm.registry.tasks` as this
       class; `head`, `default_loss` and `default_model` name registered
       components; `Options` is a dataclass with a `# comment` per field;
       every task in `init_from_tasks` is registered.
    2. Data: `read` gives examples whose `texts` are strings and `size` is
       positive; `dataset` yields `(inputs, labels)` batches whose inputs
       are the declared `model_inputs`.
    3. Training: `keraslm.train` for `steps` steps on a tiny model; the
       mean loss of the last steps is at least `min_loss_drop` (nats) below
       that of the first steps.
    4. Evaluation: the final metrics hold `loss` and every declared metric,
       all finite; evaluating the saved run (`RunDirectory.load`) in this
       process gives the same numbers.
    5. Export inputs: `sample_inputs` are accepted by the model and give
       finite outputs.

    Args:
        task_cls: the `keraslm.tasks.Task` subclass.
        train, valid, test: data files for `keraslm.train`.
        output_dir: run directory (default: a temporary one, removed after).
        steps: int. Training steps. Defaults to `60`.
        min_loss_drop: float. Required drop of the training loss. Defaults to `0.3`.
        model_options: dict. Builder options (default: a 1-layer, 32-wide model).
        **options: more `keraslm.train` options (`vocabulary_size=`,
            `sequence_length=`, task options).

    Returns:
        The `keraslm.training.TrainResult`.

    Example:

    ```python
    from keraslm.testing import run_task_test
    from keraslm_qa.task import QuestionAnsweringTask

    def test_qa_task(tmp_path):
        run_task_test(QuestionAnsweringTask, train="qa_train.jsonl",
                      valid="qa_valid.jsonl", output_dir=tmp_path / "run")
    ```
    """
    import csv
    import dataclasses
    import math
    import shutil

    import keraslm
    from keraslm import registry
    from keraslm._options import field_comments
    from keraslm.models import BUILDERS
    from keraslm.training import RunDirectory, TrainConfig, load_run
    from keraslm.training.run import build_loss

    name = task_cls.name
    assert registry.tasks.get(name).load() is task_cls, (
        f"registry.tasks['{name}'] is not {task_cls.__name__}")
    assert task_cls.head in registry.task_heads, (
        f"task '{name}' names head '{task_cls.head}', which is not registered")
    assert task_cls.default_loss in registry.losses, (
        f"task '{name}' names loss '{task_cls.default_loss}', which is not registered")
    assert task_cls.default_model in BUILDERS, (
        f"task '{name}' names model '{task_cls.default_model}', not in keraslm.models.BUILDERS")
    assert dataclasses.is_dataclass(task_cls.Options), f"{name}.Options is not a dataclass"
    comments = field_comments(task_cls.Options)
    for field in dataclasses.fields(task_cls.Options):
        assert comments.get(field.name), (
            f"option '{field.name}' of task '{name}' has no `# comment` (its help text)")
    for other in task_cls.init_from_tasks:
        assert other in registry.tasks, (
            f"task '{name}' starts from runs of '{other}', which is not registered")
    assert task_cls.model_inputs, f"task '{name}' declares no model inputs"

    temporary = output_dir is None
    output_dir = os.fspath(output_dir or tempfile.mkdtemp(prefix=f"task-{name}-"))
    settings = dict(task=name, train=os.fspath(train), preset="tiny",
                    model_options=model_options or TINY_MODEL, steps=steps,
                    checkpoint_every=steps, batch_size=16, learning_rate=3e-3,
                    vocabulary_size=500, sequence_length=32, output_dir=output_dir,
                    verbose=False)
    if valid is not None:
        settings["valid"] = os.fspath(valid)
    if test is not None:
        settings["test"] = os.fspath(test)
    settings.update(options)
    try:
        config = TrainConfig.from_dict(settings, source="run_task_test").validate()
        task = task_cls(config)
        examples = task.read(config.train)
        texts = task.texts(examples)
        assert task.size(examples) > 0, f"task '{name}' read no examples from {train}"
        assert texts and all(isinstance(t, str) for t in texts), (
            f"task '{name}'.texts() must give strings")

        result = keraslm.train(config)
        with open(RunDirectory(result.run_dir).file("steps")) as handle:
            losses = [float(row["loss"]) for row in csv.DictReader(handle)]
        window = max(1, min(10, len(losses) // 4))
        first = sum(losses[:window]) / window
        last = sum(losses[-window:]) / window
        assert last <= first - min_loss_drop, (
            f"task '{name}' did not learn: training loss {first:.3f} -> {last:.3f} over "
            f"{len(losses)} steps (expected a drop of at least {min_loss_drop})")

        final = result.metrics["final"]
        for metric in ("loss", *task_cls.metrics):
            assert metric in final, (
                f"task '{name}' declares metric '{metric}' but evaluate() gave "
                f"{sorted(final)}")
            value = final[metric]
            if isinstance(value, float):
                assert math.isfinite(value), f"metric '{metric}' of task '{name}' is {value}"

        config, task, model, tokenizer = load_run(result.run_dir, "final")
        again = task.evaluate(model, task.read(config.valid or config.train), tokenizer,
                              build_loss(config, task))
        if config.valid:
            for metric, value in final.items():
                if isinstance(value, float):
                    assert math.isclose(again[metric], value, rel_tol=1e-4,
                                        abs_tol=1e-6), (
                        f"task '{name}': metric '{metric}' of the reloaded run is "
                        f"{again[metric]}, the run reported {value}")

        task_data = task.dataset(task.read(config.valid or config.train), tokenizer,
                                 training=False)
        inputs, _ = next(iter(task_data.dataset))
        if len(task_cls.model_inputs) > 1:
            assert isinstance(inputs, dict) and sorted(inputs) == sorted(
                task_cls.model_inputs), (
                f"task '{name}' batches give inputs {sorted(inputs)}, the task "
                f"declares {task_cls.model_inputs}")
        for batch in task.sample_inputs(task.read(config.valid or config.train),
                                        tokenizer):
            output = _to_numpy(model(batch, training=False))
            assert np.all(np.isfinite(output)), (
                f"task '{name}': the model gives non-finite outputs on its sample inputs")
        return result
    finally:
        if temporary:
            shutil.rmtree(output_dir, ignore_errors=True)


def run_exporter_test(format, model, inputs, *, path=None, atol=1e-4, **options):
    """Checks an exporter on a model: artifact, report and parity.

    Exports `model` with `keraslm.export(..., format=format)` and checks that
    the exporter is registered, the artifact and its `.report.json` exist,
    the reported size is the artifact's, every input shape was checked, and
    the largest difference from Keras is within `atol`.

    Args:
        format: str. An exporter name in `keraslm.registry.exporters`.
        model: a built Keras model.
        inputs: list of input batches of several shapes (a task's
            `sample_inputs`).
        path: where to write (default: a temporary directory).
        atol: float. Defaults to `1e-4`.
        **options: exporter options.

    Returns:
        The `keraslm.exporting.ExportResult`.

    Example:

    ```python
    run_exporter_test("onnx", model, task.sample_inputs(examples, tokenizer))
    ```
    """
    import keraslm
    from keraslm import registry
    from keraslm.exporting.parity import artifact_size

    component = registry.exporters.get(format)
    directory = None
    if path is None:
        directory = tempfile.mkdtemp(prefix=f"export-{format}-")
        path = os.path.join(directory, "model" + component.metadata.get("file_extension", ""))
    path = os.fspath(path)
    result = keraslm.export(model, path, format=format, inputs=inputs, atol=atol, **options)
    assert result.format == format, f"the result names format {result.format!r}"
    assert os.path.exists(result.path), f"{result.path} was not written"
    assert os.path.exists(result.path + ".report.json"), "no report beside the artifact"
    assert result.size_bytes == artifact_size(result.path) > 0, (
        f"reported size {result.size_bytes} differs from the artifact's")
    shapes = [_shape_of(batch) for batch in inputs]
    assert len(result.shapes_checked) == len(shapes), (
        f"checked {result.shapes_checked}, expected one check per input {shapes}")
    assert result.max_abs_diff <= atol, (
        f"{format}: max |diff| {result.max_abs_diff} above {atol}")
    return result


def _shape_of(batch):
    if isinstance(batch, dict):
        return {key: list(np.shape(value)) for key, value in batch.items()}
    return list(np.shape(batch))


# Helpers.


def _to_float32(data):
    """numpy float64 -> float32 (Keras' default), leaving ints alone."""

    def convert(x):
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            return x.astype("float32")
        return x

    return keras.tree.map_structure(convert, data)


def _call(layer, input_data, call_kwargs):
    if isinstance(input_data, dict):
        return layer(**input_data, **call_kwargs)
    return layer(input_data, **call_kwargs)


def _is_shape(value):
    return isinstance(value, (tuple, list)) and all(
        d is None or isinstance(d, int) for d in value
    )


def _flatten_shapes(expected):
    if _is_shape(expected):
        return [tuple(expected)]
    shapes = []
    for item in expected:
        shapes.extend(_flatten_shapes(item))
    return shapes


def _assert_shapes(output, expected_output_shape, where):
    actual = [tuple(x.shape) for x in keras.tree.flatten(output)]
    expected = _flatten_shapes(expected_output_shape)
    assert actual == expected, (
        f"Output shapes of the {where}: expected {expected}, got {actual}"
    )


def _to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x)).astype("float64")


def _assert_close(actual, expected, atol, what):
    actual, expected = keras.tree.flatten(actual), keras.tree.flatten(expected)
    assert len(actual) == len(expected), f"{what}: different numbers of outputs"
    for index, (a, e) in enumerate(zip(actual, expected)):
        a, e = _to_numpy(a), _to_numpy(e)
        difference = float(np.max(np.abs(a - e))) if a.size else 0.0
        assert a.shape == e.shape and difference <= atol, (
            f"{what}: output {index} differs (shapes {a.shape} vs {e.shape}, "
            f"max abs diff {difference:.3g} > atol {atol})"
        )


def _json_normalize(config):
    return json.loads(json.dumps(config, default=str))


def _symbolic_inputs(input_data):
    def make_input(x, name=None):
        if x is None or isinstance(x, (bool, int, float)):
            return x
        shape = tuple(x.shape)
        dtype = keras.backend.standardize_dtype(x.dtype)
        return keras.Input(
            shape=shape[1:], batch_size=shape[0], dtype=dtype, name=name
        )

    if isinstance(input_data, dict):
        return {name: make_input(x, name) for name, x in input_data.items()}
    return keras.tree.map_structure(make_input, input_data)


def _run_training_step(
    layer, symbolic_inputs, symbolic_output, input_data, jit_compile, atol
):
    first_output = keras.tree.flatten(symbolic_output)[0]
    model = keras.Model(symbolic_inputs, first_output)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss="mse",
        jit_compile=jit_compile,
    )
    before = [_to_numpy(w) for w in model.trainable_weights]
    target = np.zeros(tuple(first_output.shape), "float32")
    history = model.fit(
        input_data, target, batch_size=target.shape[0], epochs=1, verbose=0
    )
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"Training step gave a non-finite loss: {loss}"
    after = [_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after)), (
        "A training step changed no trainable weight"
    )
    # Compiled (predict) vs eager outputs of the same model.
    eager = model(input_data, training=False)
    compiled = model.predict(input_data, batch_size=target.shape[0], verbose=0)
    _assert_close(compiled, eager, atol, f"predict(jit_compile={jit_compile})")


def _run_mixed_precision_check(
    layer_cls, init_kwargs, input_data, call_kwargs, reference_layer,
    reference_output, policy, tolerance,
):
    layer = layer_cls(**{**init_kwargs, "dtype": policy})
    _call(layer, input_data, call_kwargs)
    if reference_layer.weights:
        layer.set_weights(reference_layer.get_weights())
    output = _call(layer, input_data, call_kwargs)
    compute_dtype = keras.mixed_precision.Policy(policy).compute_dtype
    for weight in layer.weights:
        assert weight.dtype == "float32", (
            f"{policy}: variable {weight.path} is {weight.dtype}, "
            "expected float32"
        )
    for sublayer in layer._flatten_layers(include_self=False):
        assert sublayer.dtype_policy.name == policy, (
            f"{policy}: sublayer {sublayer.name} has dtype policy "
            f"{sublayer.dtype_policy.name}; create sublayers with "
            "`dtype=self.dtype_policy`"
        )
    outputs = keras.tree.flatten(output)
    references = keras.tree.flatten(reference_output)
    for index, (out, ref) in enumerate(zip(outputs, references)):
        dtype = keras.backend.standardize_dtype(out.dtype)
        if not keras.backend.is_float_dtype(dtype):
            continue
        assert dtype in (compute_dtype, "float32"), (
            f"{policy}: output {index} is {dtype}, expected {compute_dtype}"
        )
        value, ref = _to_numpy(out), _to_numpy(ref)
        assert np.all(np.isfinite(value)), f"{policy}: output {index} has NaN/Inf"
        scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        difference = float(np.max(np.abs(value - ref))) if ref.size else 0.0
        assert difference <= tolerance * scale, (
            f"{policy}: output {index} differs from float32 by {difference:.3g} "
            f"(> {tolerance} x scale {scale:.3g})"
        )
