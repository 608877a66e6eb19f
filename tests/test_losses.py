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


def _masked_loss_and_grads(loss, labels, logits, jit):
    """Our masked loss and Keras' categorical cross-entropy on the kept rows,
    with the gradients of both w.r.t. the logits, in one (compiled) call."""
    import tensorflow as tf

    depth = logits.shape[-1]
    keep = labels != loss.ignore_class
    reference = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=loss.label_smoothing)
    one_hot = np.eye(depth, dtype="float32")[np.where(keep, labels, 0)][keep]

    @tf.function(jit_compile=jit)
    def both(logits):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(logits)
            ours = loss(labels, logits)
            theirs = reference(one_hot, tf.boolean_mask(logits, keep))
        return ours, theirs, tape.gradient(ours, logits), tape.gradient(theirs, logits)

    return both(tf.constant(logits))


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("ignore_class", [0, -100])
def test_masked_crossentropy_value_and_gradient_match_keras(ignore_class, label_smoothing,
                                                            jit):
    # The TensorFlow path has a hand-written gradient (softmax - target):
    # check it, and the value, against Keras' CategoricalCrossentropy on the
    # rows that are not ignored, in graph mode and compiled by XLA.
    rng = np.random.default_rng(4)
    logits = (3 * rng.standard_normal((3, 7, 50))).astype("float32")
    labels = rng.integers(1, 50, (3, 7))
    labels[0, 4:] = ignore_class
    labels[2, 1] = ignore_class
    loss = registry.losses.build("masked_sparse_categorical_crossentropy",
                                 ignore_class=ignore_class,
                                 label_smoothing=label_smoothing)
    ours, theirs, our_grad, their_grad = _masked_loss_and_grads(loss, labels, logits, jit)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    np.testing.assert_allclose(np.asarray(our_grad), np.asarray(their_grad), atol=1e-7)
    assert not np.asarray(our_grad)[labels == ignore_class].any()


def test_masked_crossentropy_mixed_precision_logits():
    import tensorflow as tf

    rng = np.random.default_rng(5)
    logits = tf.cast(20 * rng.standard_normal((4, 9, 300)), "bfloat16")
    labels = rng.integers(1, 300, (4, 9))
    loss = registry.losses.build("masked_sparse_categorical_crossentropy")
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits)
    grad = tape.gradient(value, logits)
    # Computed in float32 from the bfloat16 values; the gradient keeps the
    # logits' dtype.
    expected = -log_softmax(np.asarray(tf.cast(logits, "float64")))
    expected = np.take_along_axis(expected, labels[..., None], -1).mean()
    assert value.dtype == "float32" and grad.dtype == "bfloat16"
    assert float(value) == pytest.approx(expected, rel=1e-5)
    assert np.isfinite(np.asarray(tf.cast(grad, "float32"))).all()


def test_sparse_crossentropy_refuses_labels_outside_the_vocabulary():
    import tensorflow as tf

    from keraslm.losses import sparse_crossentropy_from_logits

    logits = np.zeros((2, 10), "float32")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"smaller than the number of classes(.|\n)*\[ 3 10\]"):
        sparse_crossentropy_from_logits(np.array([3, 10]), logits)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r">= 0(.|\n)*'-1', '2'"):
        sparse_crossentropy_from_logits(np.array([-1, 2]), logits)
