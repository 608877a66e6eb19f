"""The export API and the built-in saved_model exporter."""

import json

import keras
import numpy as np
import pytest

import keraslm
from keraslm import exporting, registry


def tiny_lm(vocabulary_size=50):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocabulary_size, 16)(inputs)
    x = keras.layers.MultiHeadAttention(2, 8)(x, x, use_causal_mask=True)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(vocabulary_size)(x))


def test_saved_model_export_runs_in_tensorflow(tmp_path):
    import tensorflow as tf

    model = tiny_lm()
    path = tmp_path / "lm"
    result = keraslm.export(model, str(path), format="saved_model")
    assert result.max_abs_diff <= 1e-5
    assert result.shapes_checked == [[1, 7], [3, 16]]
    # Independently of our parity check: load with TensorFlow alone, new shape.
    loaded = tf.saved_model.load(str(path))
    batch = np.random.default_rng(5).integers(1, 50, (2, 11)).astype("int32")
    np.testing.assert_allclose(loaded.serve(batch).numpy(), model(batch), atol=1e-5)
    report = json.loads((tmp_path / "lm.report.json").read_text())
    assert report["size_bytes"] == exporting.artifact_size(str(path)) > 0


def test_export_replaces_an_artifact_only_once_it_passed(tmp_path, monkeypatch):
    """A failed export leaves the previous artifact as it was: parity failure
    (the runtime's outputs disagree: the bad file is kept as .rejected) or
    an exception inside the exporter (nothing is left)."""
    import hashlib
    import os

    import tensorflow as tf

    def digest(folder):
        return hashlib.sha256(b"".join(
            open(os.path.join(root, name), "rb").read()
            for root, _, names in sorted(os.walk(folder)) for name in sorted(names))).hexdigest()

    model = tiny_lm()
    path = tmp_path / "lm"
    keraslm.export(model, str(path), format="saved_model")
    good = digest(path)
    report = (tmp_path / "lm.report.json").read_text()
    assert json.loads(report)["path"] == str(path)

    class Disagreeing:  # what a broken conversion would give: other outputs
        def __init__(self, loaded):
            self.loaded = loaded

        def serve(self, batch):
            return self.loaded.serve(batch) + 1.0

    load = tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda p: Disagreeing(load(p)))
    with pytest.raises(exporting.ExportParityError, match=r"differs .* The artifact that "
                       r"failed is kept at .*lm\.rejected; .*lm was not written"):
        keraslm.export(tiny_lm(), str(path), format="saved_model")
    monkeypatch.undo()
    assert digest(path) == good and (tmp_path / "lm.report.json").read_text() == report
    assert (tmp_path / "lm.rejected" / "saved_model.pb").exists()

    def export_then_fail(self, filepath, **kwargs):
        os.makedirs(filepath)
        open(os.path.join(filepath, "saved_model.pb"), "wb").write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "export", export_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        keraslm.export(tiny_lm(), str(path), format="saved_model")
    assert digest(path) == good
    assert sorted(os.listdir(tmp_path)) == ["lm", "lm.rejected", "lm.report.json"]
    with pytest.raises(ValueError, match=r"`atol` must be a number >= 0.*atol=-1"):
        keraslm.export(model, str(path), format="saved_model", atol=-1)


def test_sample_inputs_use_the_vocabulary():
    batches = exporting.sample_inputs(tiny_lm(vocabulary_size=7), shapes=((2, 40),))
    assert batches[0].shape == (2, 40) and batches[0].dtype == np.int32
    assert batches[0].min() >= 1 and batches[0].max() < 7


def test_parity_failure_is_reported():
    def reference(batch):
        return np.ones((len(batch), 3))

    def wrong(batch):
        return np.ones((len(batch), 3)) + 0.01

    with pytest.raises(exporting.ExportParityError,
                       match=r"differs from the Keras model by up to 0.01 .*shape \[2, 4\]"):
        exporting.check_parity(reference, wrong, [np.zeros((2, 4))], atol=1e-4,
                               format="fake")
    with pytest.raises(exporting.ExportParityError, match="NaN or Inf"):
        exporting.check_parity(reference, lambda b: reference(b) * np.nan,
                               [np.zeros((2, 4))], atol=1e-4, format="fake")
    with pytest.raises(exporting.ExportParityError, match="has shape"):
        exporting.check_parity(reference, lambda b: np.ones((1, 3)),
                               [np.zeros((2, 4))], atol=1e-4, format="fake")


def test_unknown_format_lists_installed_exporters():
    with pytest.raises(registry.UnknownComponentError,
                       match="Unknown exporter 'savedmodel'.*Did you mean 'saved_model'"):
        keraslm.export(tiny_lm(), "/tmp/never", format="savedmodel")
