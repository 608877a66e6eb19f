"""Losses against hand computations and Keras' own implementations."""

import keras
import numpy as np
import pytest

from keraslm import registry


def log_softmax(x, axis=-1):
    x = x - x.max(axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis, keepdims=True))


def test_focal_matches_keras_categorical_focal():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 5)).astype("float32")
    labels = rng.integers(0, 5, 6)
    ours = registry.losses.build("focal", gamma=2.0, alpha=0.25)
    reference = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0,
                                                          from_logits=True)
    np.testing.assert_allclose(float(ours(labels, logits)),
                               float(reference(np.eye(5)[labels], logits)), rtol=1e-5)


def test_focal_by_hand_with_ignored_labels():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((2, 4, 3)).astype("float32")
    labels = np.array([[0, 2, -100, 1], [1, -100, -100, 0]])
    loss = registry.losses.build("focal", gamma=1.5, ignore_class=-100)
    logp = log_softmax(logits.astype("float64"))
    real = labels != -100
    log_pt = np.take_along_axis(logp, np.where(real, labels, 0)[..., None], -1)[..., 0]
    expected = (-(1 - np.exp(log_pt)) ** 1.5 * log_pt)[real].mean()
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    # gamma 0 is plain cross-entropy
    plain = registry.losses.build("focal", gamma=0.0, ignore_class=-100)
    assert float(plain(labels, logits)) == pytest.approx(-log_pt[real].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="Received: gamma=-1"):
        registry.losses.build("focal", gamma=-1)


@pytest.mark.parametrize("symmetric", [False, True])
def test_infonce_by_hand(symmetric):
    rng = np.random.default_rng(2)
    pairs = rng.standard_normal((5, 2, 8)).astype("float32")
    loss = registry.losses.build("infonce", temperature=0.1, symmetric=symmetric)
    a = pairs[:, 0] / np.linalg.norm(pairs[:, 0], axis=-1, keepdims=True)
    p = pairs[:, 1] / np.linalg.norm(pairs[:, 1], axis=-1, keepdims=True)
    logits = (a @ p.T) / 0.1
    forward = -np.diag(log_softmax(logits, axis=1)).mean()
    backward = -np.diag(log_softmax(logits, axis=0)).mean()
    expected = (forward + backward) / 2 if symmetric else forward
    assert float(loss(None, pairs)) == pytest.approx(expected, rel=1e-5)


def test_infonce_rewards_matching_pairs():
    rng = np.random.default_rng(3)
    anchors = rng.standard_normal((8, 16)).astype("float32")
    aligned = np.stack([anchors, anchors + 0.01], axis=1)
    shuffled = np.stack([anchors, np.roll(anchors, 1, axis=0)], axis=1)
    loss = registry.losses.build("infonce")
    assert float(loss(None, aligned)) < 0.01 < float(loss(None, shuffled))
    with pytest.raises(ValueError, match=r"\(batch, 2, dim\).*Received shape \(8, 16\)"):
        loss(None, anchors)


def test_label_smoothed_crossentropy_defaults_to_point_one():
    loss = registry.losses.build("label_smoothed_crossentropy")
    assert loss.label_smoothing == 0.1 and loss.ignore_class == 0
