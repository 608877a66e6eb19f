"""LSTMStack converts to TFLite with builtin ops only (no Flex ops).

DESIGN.md: a dynamic-length LSTM needs Flex ops (TensorListReserve), which
LiteRT's Python interpreter cannot run; with a static signature (WHILE on
builtins) or `unroll=True` it converts to builtins. Checked here with the
converter restricted to TFLITE_BUILTINS and the file run in LiteRT.
"""

import keras
import numpy as np
import pytest

import keraslm.layers as layers

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TFLite conversion needs the TensorFlow backend",
)


def run_in_litert_builtins(model, ids):
    """Converts `model` for `ids`' static shape with TFLite builtins only and
    returns LiteRT's output for `ids`."""
    tf = pytest.importorskip("tensorflow")
    litert = pytest.importorskip("ai_edge_litert.interpreter")

    function = tf.function(lambda batch: model(batch, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(ids.shape, tf.int32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], ids)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize(
    "init_kwargs",
    [
        {"units": 8, "num_layers": 2},
        {"units": 8, "unroll": True},
        {"units": 8, "cell_type": "gru", "bidirectional": True},
    ],
    ids=["lstm-2-layers", "lstm-unrolled", "bigru"],
)
def test_lstm_stack_converts_to_tflite_builtins(init_kwargs):
    length = 6
    inputs = keras.Input((length,), batch_size=1, dtype="int32")
    x = layers.TokenEmbedding(20, 8, mask_zero=True)(inputs)
    x = layers.LSTMStack(**init_kwargs)(x)
    model = keras.Model(inputs, keras.layers.Dense(20)(x))

    ids = np.array([[3, 5, 7, 2, 0, 0]], "int32")  # Right padding, masked.
    output = run_in_litert_builtins(model, ids)
    np.testing.assert_allclose(output, np.asarray(model(ids)), atol=1e-5)


def test_hashed_ngram_embedding_converts_to_tflite_builtins():
    vocabulary_size, length = 46340, 7  # a*V+b close to 2**31 in int32.
    inputs = keras.Input((length,), batch_size=1, dtype="int32")
    x = layers.HashedNGramEmbedding(vocabulary_size, 1009, 8, order=3)(inputs)
    model = keras.Model(inputs, x)

    ids = np.array([[46339, 46338, 5, 46337, 0, 0, 0]], "int32")
    output = run_in_litert_builtins(model, ids)
    np.testing.assert_allclose(output, np.asarray(model(ids)), atol=1e-6)
    assert np.abs(output[0, 1:4]).sum() > 0 and np.all(output[0, 4:] == 0)
