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

Both use `keras.ops` and work on any Keras backend. They raise
`AssertionError` with a message on failure, so they fit into pytest or
unittest alike.

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

__all__ = ["run_layer_test", "run_model_saving_test"]

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
