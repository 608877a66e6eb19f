"""The first built-in component of each registry, against references."""

import keras
import numpy as np
import pytest

import keraslm
from keraslm import registry


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture
def lm_batch():
    rng = np.random.default_rng(3)
    y_true = np.array([[5, 2, 7, 0, 0], [1, 3, 0, 0, 0]], "int32")  # 0 = padding
    y_pred = rng.standard_normal((2, 5, 9)).astype("float32")
    return y_true, y_pred


def test_masked_cross_entropy_matches_keras_and_hand_computation(lm_batch):
    y_true, y_pred = lm_batch
    loss = registry.losses.build("masked_sparse_categorical_crossentropy")
    ours = float(loss(y_true, y_pred))
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                            ignore_class=0)
    assert ours == pytest.approx(float(keras_loss(y_true, y_pred)), rel=1e-6)
    logp = log_softmax(y_pred.astype("float64"))
    real = y_true != 0
    nll = -np.take_along_axis(logp, y_true[..., None], -1)[..., 0]
    assert ours == pytest.approx(nll[real].mean(), rel=1e-6)


def test_padding_does_not_change_the_loss(lm_batch):
    y_true, y_pred = lm_batch
    loss = registry.losses.build("masked_sparse_categorical_crossentropy")
    padded_true = np.pad(y_true, ((0, 0), (0, 7)))
    padded_pred = np.pad(y_pred, ((0, 0), (0, 7), (0, 0)))
    assert float(loss(padded_true, padded_pred)) == pytest.approx(
        float(loss(y_true, y_pred)), rel=1e-6)


def test_label_smoothing_by_hand(lm_batch):
    y_true, y_pred = lm_batch
    loss = registry.losses.build("masked_sparse_categorical_crossentropy",
                                 label_smoothing=0.1)
    logp = log_softmax(y_pred.astype("float64"))
    target = np.full(logp.shape, 0.1 / logp.shape[-1])
    np.put_along_axis(target, y_true[..., None], 0.9 + 0.1 / logp.shape[-1], -1)
    per_token = -(target * logp).sum(-1)
    assert float(loss(y_true, y_pred)) == pytest.approx(
        per_token[y_true != 0].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="Received: label_smoothing=1.5"):
        registry.losses.build("masked_sparse_categorical_crossentropy",
                              label_smoothing=1.5)


def test_loss_serializes():
    loss = registry.losses.build("masked_sparse_categorical_crossentropy",
                                 ignore_class=-100, label_smoothing=0.2)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.ignore_class, restored.label_smoothing) == (-100, 0.2)


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_adamw_does_not_decay_biases_norms_or_embeddings(decay_embeddings):
    inputs = keras.Input((3,), dtype="int32")
    x = keras.layers.Embedding(10, 4, name="token_embedding")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(4, name="dense")(x)
    model = keras.Model(inputs, outputs)
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, "float32"))
    optimizer = registry.optimizers.build("adamw", learning_rate=0.1,
                                          weight_decay=0.5,
                                          decay_embeddings=decay_embeddings)
    zero_gradients = [np.zeros(v.shape, "float32") for v in model.trainable_variables]
    optimizer.apply(zero_gradients, model.trainable_variables)
    after = {v.path: v.numpy() for v in model.trainable_variables}
    # With zero gradients only weight decay moves a variable: w -= w * wd * lr.
    np.testing.assert_allclose(after["dense/kernel"], 1 - 0.5 * 0.1, rtol=1e-6)
    for path in ("dense/bias", "norm/gamma", "norm/beta"):
        np.testing.assert_array_equal(after[path], 1.0)
    # Embedding tables only with decay_embeddings=True.
    np.testing.assert_allclose(after["token_embedding/embeddings"],
                               1 - 0.5 * 0.1 if decay_embeddings else 1.0, rtol=1e-6)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert restored.decay_embeddings is decay_embeddings


def test_sgd_nesterov_momentum_matches_formula():
    optimizer = registry.optimizers.build("sgd", learning_rate=0.1, momentum=0.9,
                                          nesterov=True)
    variable = keras.Variable(np.array([1.0], "float32"))
    gradient = np.array([2.0], "float32")
    velocity, value = 0.0, 1.0
    for _ in range(3):
        optimizer.apply([gradient], [variable])
        velocity = 0.9 * velocity - 0.1 * 2.0
        value = value + 0.9 * velocity - 0.1 * 2.0
    np.testing.assert_allclose(variable.numpy(), [value], rtol=1e-6)


def test_warmup_cosine_curve():
    schedule = registry.schedules.build("warmup_cosine", learning_rate=1e-3,
                                        warmup_steps=10, decay_steps=100, alpha=0.1)
    steps = np.arange(0, 111)
    values = np.array([float(schedule(s)) for s in steps])
    np.testing.assert_allclose(values[:11], 1e-3 * steps[:11] / 10, rtol=1e-5, atol=1e-9)
    decay = steps[10:] - 10
    expected = 1e-3 * ((1 - 0.1) * 0.5 * (1 + np.cos(np.pi * decay / 100)) + 0.1)
    np.testing.assert_allclose(values[10:], expected, rtol=1e-5)
    assert registry.schedules.build("constant", learning_rate=0.3) == 0.3
    with pytest.raises(ValueError, match="Received: warmup_steps=-1"):
        registry.schedules.build("warmup_cosine", warmup_steps=-1)


def test_perplexity_is_exp_of_masked_cross_entropy(lm_batch):
    y_true, y_pred = lm_batch
    metric = registry.metrics.build("perplexity")
    metric.update_state(y_true, y_pred)
    loss = registry.losses.build("masked_sparse_categorical_crossentropy")
    assert float(metric.result()) == pytest.approx(np.exp(float(loss(y_true, y_pred))),
                                                   rel=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_classification_head_pooling(pooling):
    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((3, 6, 8)).astype("float32")
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], bool)
    head = keraslm.heads.ClassificationHead(num_classes=4, pooling=pooling)
    logits = np.asarray(head(hidden, padding_mask=mask))
    kernel, bias = (w.numpy() for w in head.output_dense.weights)
    for row in range(3):
        real = hidden[row][mask[row]]
        pooled = {"cls": real[0], "mean": real.mean(0), "max": real.max(0)}[pooling]
        np.testing.assert_allclose(logits[row], pooled @ kernel + bias, atol=1e-5)
    # Changing padded positions never changes the prediction.
    noisy = hidden.copy()
    noisy[~mask] = 100.0
    np.testing.assert_allclose(np.asarray(head(noisy, padding_mask=mask)), logits,
                               atol=1e-5)
    assert registry.task_heads.get("classification").metadata["task"] == "classify"


def test_classification_head_round_trip(tmp_path):
    inputs = keras.Input((None, 8))
    outputs = keraslm.heads.ClassificationHead(3, pooling="mean", hidden_dim=5)(inputs)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "head.keras"
    model.save(path)
    restored = keraslm.load_model(path)
    batch = np.random.default_rng(1).standard_normal((2, 4, 8)).astype("float32")
    np.testing.assert_allclose(restored(batch), model(batch), atol=1e-6)
    with pytest.raises(ValueError, match="Received: pooling='sum'"):
        keraslm.heads.ClassificationHead(3, pooling="sum")
