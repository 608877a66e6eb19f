"""keraslm-tflite, installed with pip, writes TFLite files that LiteRT runs.

Every check reads the file with what we did not write: a fresh
`ai_edge_litert.interpreter.Interpreter` (not the plugin's runner), the
flatbuffer schema that ships with ai_edge_litert, the Keras model with the
same weights, and scikit-learn for the task metric.
"""

import collections
import importlib.metadata
import json
import os

import keras
import numpy as np
import pytest
import shared_data
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

import keraslm
from keraslm import cli, exporting, registry
from keraslm_tflite import convert as tflite_convert

SMALL = dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
             max_sequence_length=32)


# -- what the tests read files with --------------------------------------------

def litert(path, batch):
    """Runs `batch` through a fresh LiteRT interpreter, resized to it where the
    signature is dynamic; returns the first output."""
    interpreter = Interpreter(model_path=str(path))
    [entry] = interpreter.get_input_details()
    if -1 in entry["shape_signature"]:
        interpreter.resize_tensor_input(entry["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], batch.astype(entry["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def schema_ops(path):
    """`(builtin op names, custom op codes)` the file's operators use, read with
    the flatbuffer object API (not the accessors `operators()` uses)."""
    model = schema.ModelT.InitFromPackedBuf(open(path, "rb").read(), 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    builtins, custom = set(), set()
    for graph in model.subgraphs:
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom.add(code.customCode.decode())
            else:
                builtins.add(names[builtin])
    return builtins, custom


def agreement(reference, path, batches):
    """Share of positions where the file's arg-max equals `reference`'s."""
    same = total = 0
    for batch in batches:
        want, got = np.asarray(reference(batch)).argmax(-1), litert(path, batch).argmax(-1)
        same += int(np.sum(want == got))
        total += want.size
    return same / total


# -- models --------------------------------------------------------------------

def transformer_lm():
    return keraslm.models.transformer_lm(vocabulary_size=64, **SMALL)


def lstm_lm():
    return keraslm.models.lstm_lm(vocabulary_size=64, hidden_dim=16, units=16, num_layers=1)


def bigram_encoder():
    # Hashed n-grams: int32 multiply and floor-mod, then a gather.
    return keraslm.models.transformer_encoder(vocabulary_size=64, ngram_buckets=101, **SMALL)


def head(name, **options):
    def build():
        encoder = keraslm.models.transformer_encoder(vocabulary_size=64, **SMALL)
        return registry.task_heads.build(name, backbone=encoder, **options)
    build.__name__ = name
    return build


class CoshLayer(keras.layers.Layer):
    """cosh has no TFLite builtin; TensorFlow lowers it to a Select-TF op."""

    def call(self, x):
        return keras.ops.cosh(x)


class ErfinvLayer(keras.layers.Layer):
    """erfinv has neither a TFLite builtin nor a Select-TF kernel."""

    def call(self, x):
        return keras.ops.erfinv(0.5 * x)


def with_layer(layer):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(64, 8)(inputs)
    x = keras.layers.Dense(8, activation="tanh")(x)
    x = layer(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


# -- tests ---------------------------------------------------------------------

def test_entry_point_is_installed():
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="keraslm")
                     if ep.name == "tflite"]
    assert entry_point.dist.name == "keraslm-tflite"
    assert entry_point.value == "keraslm_tflite"
    component = registry.exporters.get("tflite")
    assert component.plugin == "tflite"
    assert component.metadata == {
        "file_extension": ".tflite", "runtime": "keraslm_tflite.runtime:load",
        "choices": {"quantize": ("none", "float16", "dynamic_int8", "int8")}}
    assert "ai_edge_litert" in component.description
    from keraslm_tflite.exporter import export_tflite

    assert component.load() is export_tflite


@pytest.mark.parametrize("build", [
    transformer_lm, lstm_lm, bigram_encoder, head("classification", num_classes=3),
    head("token_classification", num_classes=5), head("masked_lm")])
def test_float32_file_equals_keras_in_litert(tmp_path, build):
    keras.utils.set_random_seed(3)
    model = build()
    path = tmp_path / "model.tflite"
    result = keraslm.export(model, str(path), format="tflite")
    assert result.max_abs_diff < 1e-5 and result.tolerance == 1e-4
    rng = np.random.default_rng(11)
    if result.details["static_shape"]:  # recurrent: [1, L], right-padded rows
        length = result.details["input_signature"][1]
        assert result.details["input_signature"] == [1, length] == [1, 16]
        for size in (length, 5):
            ids = rng.integers(1, 64, (1, size)).astype("int32")
            padded = np.pad(ids, ((0, 0), (0, length - size)))
            np.testing.assert_allclose(litert(path, padded)[:, :size],
                                       np.asarray(model(ids)), atol=1e-5)
    else:  # any batch and length: try ones the exporter never converted for
        assert result.details["input_signature"] == [-1, -1]
        for shape in [(5, 3), (2, 29)]:
            ids = rng.integers(1, 64, shape).astype("int32")
            ids[-1, shape[1] // 2:] = 0  # a padded row
            np.testing.assert_allclose(litert(path, ids), np.asarray(model(ids)),
                                       atol=1e-5)
    # The ops lint: builtins only, read two ways.
    builtins, custom = schema_ops(path)
    assert custom == set()
    content = path.read_bytes()
    assert tflite_convert.operators(content) == sorted(builtins) == result.details["ops"]
    unallocated = Interpreter(model_path=str(path))  # before XNNPACK fuses nodes
    assert {op["op_name"] for op in unallocated._get_ops_details()} <= builtins
    assert result.details["select_tf_ops"] == {}
    assert result.details["requires"] == "LiteRT builtin ops only"
    report = json.loads((tmp_path / "model.tflite.report.json").read_text())
    assert report["size_bytes"] == os.path.getsize(path)
    readme = (tmp_path / "model.tflite.README.txt").read_text()
    assert "Takes: token ids int32" in readme and 'Interpreter(model_path="model.tflite")' in readme
    assert f"[1, {result.details['input_signature'][1]}]" in readme or "any batch" in readme


@pytest.mark.parametrize("build, options, op, layer", [
    (lstm_lm, {"static_shape": False}, "FlexTensorListReserve",
     "recurrent_stack/lstm_0"),
    (lambda: with_layer(CoshLayer(name="cosh_layer")), {}, "FlexCosh", "cosh_layer"),
    # The Flex op gives the model's output: its tensor name holds no layer.
    (lambda: keras.Sequential([keras.Input((None,), dtype="int32"),
                               keras.layers.Embedding(64, 8),
                               CoshLayer(name="last_layer")]), {}, "FlexCosh", "last_layer"),
])
def test_flex_ops_are_refused_unless_allowed(tmp_path, build, options, op, layer):
    model = build()
    path = tmp_path / "model.tflite"
    with pytest.raises(exporting.ExportError) as refused:
        keraslm.export(model, str(path), format="tflite", **options)
    message = str(refused.value)
    assert f"{op} (from " in message and layer in message
    assert "allow_select_ops=True" in message
    assert sorted(os.listdir(tmp_path)) == []
    result = keraslm.export(model, str(path), format="tflite", allow_select_ops=True,
                            **options)
    builtins, custom = schema_ops(path)
    assert op in custom and all(name.startswith("Flex") for name in custom)
    assert sorted(result.details["select_tf_ops"]) == sorted(custom)
    assert any(path_.endswith(layer) for path_ in result.details["select_tf_ops"][op])
    assert result.details["requires"] == "the Flex delegate (Select-TF ops)"
    assert result.max_abs_diff is None and "Flex delegate" in result.details["parity"]
    with pytest.raises(RuntimeError, match="Flex delegate"):  # LiteRT cannot run it
        litert(path, np.ones((1, 5), "int32"))


def test_an_op_without_any_tflite_kernel_is_named_with_its_layer(tmp_path):
    model = with_layer(ErfinvLayer(name="erfinv_layer"))
    with pytest.raises(exporting.ExportError,
                       match=r"neither as a builtin nor as a Select-TF op: Erfinv "
                             r"\(from \S*erfinv_layer\)"):
        keraslm.export(model, str(tmp_path / "model.tflite"), format="tflite",
                       allow_select_ops=True)
    assert os.listdir(tmp_path) == []


def test_quantized_files_are_smaller_and_agree_with_keras(tmp_path):
    # Weights dominate: a 2,000-word embedding (tied to the output layer).
    keras.utils.set_random_seed(5)
    model = keraslm.models.transformer_lm(
        vocabulary_size=2000, num_layers=1, num_heads=2, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=32)
    inputs = exporting.sample_inputs(model)
    float32 = keraslm.export(model, str(tmp_path / "float32.tflite"), format="tflite",
                             inputs=inputs)
    float_size = os.path.getsize(tmp_path / "float32.tflite")
    reference = exporting.keras_reference(model)
    fresh = [np.random.default_rng(2).integers(1, 2000, (4, 25)).astype("int32")]
    ratios = {}
    for quantize in ("float16", "dynamic_int8"):
        path = tmp_path / f"{quantize}.tflite"
        result = keraslm.export(model, str(path), format="tflite", quantize=quantize,
                                inputs=inputs)
        details = result.details
        assert details["quantize"] == quantize and result.tolerance is None
        assert details["size_float32_bytes"] == float_size == float32.size_bytes
        assert result.size_bytes == os.path.getsize(path)
        assert details["size_ratio"] == pytest.approx(os.path.getsize(path) / float_size,
                                                      rel=1e-12)
        assert details["float32_max_abs_diff"] < 1e-5
        # Agreement recomputed in LiteRT on the same inputs, then on new ones.
        assert details["argmax_agreement"] == pytest.approx(
            agreement(reference, path, inputs), abs=1e-12)
        assert agreement(reference, path, fresh) >= 0.9
        builtins, custom = schema_ops(path)
        assert custom == set() and sorted(builtins) == details["ops"]
        ratios[quantize] = details["size_ratio"]
    # Measured 0.52x for both: the converter stores the tied int8 embedding
    # twice (one table for the GATHER, one for the logits' FULLY_CONNECTED).
    assert ratios["float16"] < 0.6 and ratios["dynamic_int8"] < 0.6
    assert "DEQUANTIZE" in schema_ops(tmp_path / "dynamic_int8.tflite")[0]


def fail_if_converted(monkeypatch):
    def convert(*args, **kwargs):
        raise AssertionError("converted before the options were checked")

    monkeypatch.setattr("keraslm_tflite.exporter.convert", convert)


def two_input_model():
    left, right = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(64, 8)
    return keras.Model([left, right], keras.layers.Dense(4)(embedding(left) + embedding(right)))


@pytest.mark.parametrize("build, options, error, message", [
    (transformer_lm, {"quantize": "int4"}, ValueError,
     "`quantize` must be one of none, float16, dynamic_int8, int8. Received: "
     "quantize='int4'"),
    (transformer_lm, {"sequence_length": 0}, ValueError,
     "`sequence_length` must be a positive integer. Received: sequence_length=0"),
    (transformer_lm, {"min_agreement": 1.5}, ValueError,
     "`min_agreement` must be in [0, 1]. Received: min_agreement=1.5"),
    # Converting this one ends the process (a segmentation fault in TF 2.21).
    (lstm_lm, {"quantize": "int8"}, ValueError,
     "quantize='int8' is not supported for recurrent layers that loop over time "
     "(lstm_0)"),
    (two_input_model, {"inputs": [[np.ones((1, 3), "int32")] * 2]}, exporting.ExportError,
     "The tflite exporter handles models with one input. Received a model with 2 inputs."),
])
def test_bad_options_are_refused_before_conversion(tmp_path, monkeypatch, build, options,
                                                   error, message):
    model = build()
    fail_if_converted(monkeypatch)
    with pytest.raises(error) as refused:
        keraslm.export(model, str(tmp_path / "model.tflite"), format="tflite", **options)
    assert message in str(refused.value)
    assert os.listdir(tmp_path) == []


# -- the command line ----------------------------------------------------------

@pytest.fixture
def config_only_run(tmp_path):
    """A run directory with a configuration and no model: every refusal below
    must come before the model is read."""
    from keraslm.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(task="classify", train=str(shared_data.path("reviews", "train.csv")),
                         text_column="text", label_column="label", model="lstm_lm",
                         sequence_length=96)
    (run / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    return run


def export_command(capsys, *argv):
    try:
        status = cli.main(["export", *map(str, argv)])
    except SystemExit as exit:  # argparse refuses a flag's value
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("argv, status, expected", [
    (["--format", "tflite", "--quantize", "int4"], 1,
     "keraslm export: error: --quantize must be one of none, float16, dynamic_int8, "
     "int8 for the tflite exporter. Received: --quantize int4"),
    (["--format", "onnx", "--quantize", "float16"], 1,
     "keraslm export: error: The onnx exporter does not take --quantize (it takes "
     "none of --quantize, --allow-select-ops, --sequence-length)."),
    (["--format", "saved_model", "--allow-select-ops"], 1,
     "The saved_model exporter does not take --allow-select-ops"),
    (["--format", "tflite", "--sequence-length", "0"], 2,
     "argument --sequence-length: must be a positive integer. Received: '0'"),
    (["--format", "tflite", "--eval-examples", "-3"], 2,
     "argument --eval-examples: must be a positive integer. Received: '-3'"),
    (["--format", "tflite"], 1, "model.keras does not exist (has the run finished?)"),
])
def test_cli_refuses_bad_options_before_reading_the_model(config_only_run, capsys, argv,
                                                          status, expected):
    got, out, err = export_command(capsys, config_only_run, *argv)
    assert got == status, err
    assert expected in err, err
    assert "Traceback" not in err and "unexpected error" not in err
    assert not (config_only_run / "export").exists()


def test_cli_keeps_an_existing_file_without_overwrite(config_only_run, capsys):
    target = config_only_run / "export" / "model.tflite"
    target.parent.mkdir()
    target.write_bytes(b"an earlier export")
    status, _, err = export_command(capsys, config_only_run, "--format", "tflite")
    assert status == 1
    assert f"The output {target} exists. Pass --overwrite to replace it" in err
    assert target.read_bytes() == b"an earlier export"
    assert os.listdir(target.parent) == ["model.tflite"]


def test_cli_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    status, _, err = export_command(capsys, tmp_path, "--format", "tflite")
    assert status == 1
    assert "not a keraslm run directory (no config.json)" in err and str(tmp_path) in err


# -- real data -----------------------------------------------------------------

def test_reviews_lstm_classifier_keeps_its_accuracy_in_dynamic_int8(tmp_path, capsys):
    """Trained on 3,800 reviews (100 steps, about 20 s), exported from the
    command line, then scored on the 1,000 test reviews with LiteRT and
    scikit-learn, not with the exporter's own metric comparison."""
    from sklearn.metrics import accuracy_score

    from keraslm.training import load_run

    reviews = shared_data.path("reviews")
    run = tmp_path / "reviews"
    keraslm.train(task="classify", train=str(reviews / "train.csv"), text_column="text",
                  label_column="label", validation_fraction=0.05, model="lstm_lm",
                  model_options={"units": 64, "hidden_dim": 64}, tokenizer="word",
                  vocabulary_size=4000, sequence_length=96, steps=100,
                  learning_rate=5e-3, batch_size=32, output_dir=str(run), verbose=False)
    capsys.readouterr()
    status, out, err = export_command(capsys, run, "--format", "tflite", "--quantize",
                                      "dynamic_int8", "--json", "--eval-examples", "100")
    assert status == 0, err
    report = json.loads(out)
    path = run / "export" / "model.tflite"
    assert report["path"] == str(path)
    assert report["details"]["input_signature"] == [1, 96]
    assert report["details"]["size_float32_bytes"] / os.path.getsize(path) >= 3
    assert set(report["details"]["metrics"]) >= {"accuracy", "macro_f1"}
    # A failed check is one line for the user, and the good file stays.
    exported = path.read_bytes()
    status, _, err = export_command(capsys, run, "--format", "tflite", "--quantize",
                                    "dynamic_int8", "--overwrite", "--atol", "0")
    assert status == 1
    assert "keraslm export: error: tflite (float32) export differs from the Keras " \
           "model by up to" in err and "(tolerance 0)" in err, err
    assert "unexpected error" not in err and path.read_bytes() == exported

    _, task, model, tokenizer = load_run(str(run))
    test = task.read(str(reviews / "test.csv"))
    labels, keras_predictions, litert_predictions = [], [], []
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    [entry], [output] = interpreter.get_input_details(), interpreter.get_output_details()
    for ids, label in task.dataset(test, tokenizer, training=False).dataset:
        ids = np.asarray(ids)
        labels.extend(np.asarray(label).tolist())
        keras_predictions.extend(np.asarray(model.predict_on_batch(ids)).argmax(-1))
        for row in ids:
            interpreter.set_tensor(entry["index"], row[None].astype("int32"))
            interpreter.invoke()
            litert_predictions.append(int(interpreter.get_tensor(output["index"]).argmax()))
    assert len(labels) == 1000
    majority = max(collections.Counter(labels).values()) / len(labels)
    keras_accuracy = accuracy_score(labels, keras_predictions)
    litert_accuracy = accuracy_score(labels, litert_predictions)
    assert keras_accuracy > majority + 0.05, (keras_accuracy, majority)
    assert abs(litert_accuracy - keras_accuracy) <= 0.01, (litert_accuracy, keras_accuracy)
