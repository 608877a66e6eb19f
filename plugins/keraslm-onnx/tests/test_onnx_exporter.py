"""keraslm-onnx, installed with pip, exports models that onnxruntime runs."""

import importlib.metadata
import os
import subprocess
import sys

import keras
import numpy as np
import onnxruntime
import pytest

import keraslm
from keraslm import exporting


def causal_transformer(vocabulary_size=64):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocabulary_size, 16)(inputs)
    x = x + keras.layers.MultiHeadAttention(2, 8)(x, x, use_causal_mask=True)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(vocabulary_size)(x))


def lstm_lm(vocabulary_size=64):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocabulary_size, 16)(inputs)
    x = keras.layers.LSTM(16, return_sequences=True)(x)
    return keras.Model(inputs, keras.layers.Dense(vocabulary_size)(x))


def keraslm_transformer_lm(vocabulary_size=64):
    # Exact GELU lowers to Erfc in TensorFlow; the exporter rewrites it.
    return keraslm.models.transformer_lm(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64, activation="gelu")


def keraslm_bigram_bag(vocabulary_size=64):
    # Hashed bigrams: int32 multiply and floor-mod, then a gather.
    return keraslm.models.transformer_encoder(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64, ngram_buckets=101)


def test_entry_point_is_installed():
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="keraslm")
                     if ep.name == "onnx"]
    assert entry_point.dist.name == "keraslm-onnx"
    assert entry_point.value == "keraslm_onnx"
    component = keraslm.registry.exporters.get("onnx")
    assert component.plugin == "onnx"
    assert component.metadata == {"file_extension": ".onnx"}


@pytest.mark.parametrize("build", [causal_transformer, lstm_lm, keraslm_transformer_lm,
                                   keraslm_bigram_bag])
def test_onnx_matches_keras_in_onnxruntime(tmp_path, build):
    model = build()
    path = tmp_path / "model.onnx"
    result = keraslm.export(model, str(path), format="onnx")
    assert result.max_abs_diff < 1e-5
    assert result.details["opset"] == 17
    readme = (tmp_path / "model.onnx.README.txt").read_text()  # beside the file
    assert "Input:  inputs" in readme and "onnxruntime.InferenceSession" in readme
    # Independently of the exporter's own check: a fresh onnxruntime session on
    # batch sizes and lengths the exporter never tried.
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(7)
    for shape in [(5, 3), (1, 33)]:
        batch = rng.integers(1, 64, shape).astype("int32")
        [logits] = session.run(None, {name: batch})
        np.testing.assert_allclose(logits, model(batch), atol=1e-5)


def test_parity_failure_is_caught(tmp_path, monkeypatch):
    model = causal_transformer()
    real_finish = exporting.finish

    def corrupted_finish(format, path, model, runtime_fn, inputs, atol, details=None):
        return real_finish(format, path, model, lambda b: runtime_fn(b) + 1e-2,
                           inputs, atol, details)

    monkeypatch.setattr("keraslm_onnx.exporter.finish", corrupted_finish)
    with pytest.raises(exporting.ExportParityError, match="onnx export differs"):
        keraslm.export(model, str(tmp_path / "m.onnx"), format="onnx")


def test_cli_lists_the_plugin():
    env = dict(os.environ, KERASLM_STRICT_PLUGINS="1")
    env.pop("KERASLM_LOAD_PLUGINS", None)
    result = subprocess.run([sys.executable, "-m", "keraslm", "plugins"],
                            capture_output=True, text=True, env=env, check=True)
    assert "onnx 0.1.0 (keraslm-onnx)" in result.stdout
    assert "exporters: onnx" in result.stdout
