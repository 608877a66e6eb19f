"""keraslm-qa: a task from outside the core, found by entry point."""

import importlib.metadata

import keras
import numpy as np
import pytest

import keraslm
from keraslm_qa.losses import check_positions
from keraslm_qa.metrics import best_spans


def test_registered_through_the_entry_point():
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="keraslm")
                     if ep.name == "qa"]
    assert entry_point.dist.name == "keraslm-qa"
    assert keraslm.registry.task_heads.get("qa_span").metadata == {"task": "qa"}
    assert keraslm.registry.losses.get("span").plugin == "qa"
    assert {"span_exact_match", "span_f1"} <= set(keraslm.registry.metrics.names())


def brute_force_spans(logits, max_answer_length):
    spans = []
    for start_logits, end_logits in logits:
        best, best_score = None, -np.inf
        for i in range(len(start_logits)):
            for j in range(i, min(i + max_answer_length, len(end_logits))):
                if start_logits[i] + end_logits[j] > best_score:
                    best, best_score = (i, j), start_logits[i] + end_logits[j]
        spans.append(best)
    return np.array(spans)


@pytest.mark.parametrize("max_answer_length", [1, 3, 50])
def test_best_spans_match_brute_force(max_answer_length):
    logits = np.random.default_rng(max_answer_length).standard_normal((16, 2, 12))
    np.testing.assert_array_equal(best_spans(logits.astype("float32"), max_answer_length),
                                  brute_force_spans(logits, max_answer_length))


def test_span_loss_by_hand():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 2, 7)).astype("float32")
    gold = np.array([[1, 2], [0, 0], [4, 6]])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([(logp[i, 0, s] + logp[i, 1, e]) / 2 for i, (s, e) in enumerate(gold)])
    loss = keraslm.registry.losses.build("span")
    assert float(loss(gold, logits)) == pytest.approx(expected, rel=1e-5)


def test_metrics_by_hand():
    # Logits whose best spans are [1,2], [0,3] and [5,5].
    logits = np.full((3, 2, 6), -10.0, "float32")
    for row, (start, end) in enumerate([(1, 2), (0, 3), (5, 5)]):
        logits[row, 0, start] = logits[row, 1, end] = 10.0
    gold = np.array([[1, 2], [2, 3], [4, 4]])
    exact = keraslm.registry.metrics.build("span_exact_match")
    f1 = keraslm.registry.metrics.build("span_f1")
    exact.update_state(gold, logits)
    f1.update_state(gold, logits)
    assert float(exact.result()) == pytest.approx(1 / 3)
    # F1 per example: 1; overlap 2 of (2 gold, 4 predicted) -> 4/6; 0.
    assert float(f1.result()) == pytest.approx((1 + 4 / 6 + 0) / 3, rel=1e-6)


def test_bad_span_is_reported():
    with pytest.raises(ValueError, match=r"Answer span \[5, 3\] of example 1 .*0 <= start <= end < 8"):
        check_positions(np.array([[0, 1], [5, 3]]), length=8)
    with pytest.raises(ValueError, match="Received: max_answer_length=0"):
        best_spans(np.zeros((1, 2, 4), "float32"), 0)


def test_qa_head_learns_to_point_at_the_answer():
    """A tiny backbone learns to find the answer between two marker tokens."""
    rng = np.random.default_rng(0)
    length, vocabulary, open_marker, close_marker = 12, 30, 6, 7
    token_ids = rng.integers(8, vocabulary, (512, length)).astype("int32")
    token_ids[:, -2:] = 0  # padding
    starts = rng.integers(0, length - 4, 512)
    ends = starts + rng.integers(0, 3, 512)
    token_ids[np.arange(512), starts] = open_marker
    token_ids[np.arange(512), ends] = close_marker
    gold = np.stack([starts, ends], axis=1)

    # Seeded: some initial weights already point at a marker (CI saw an
    # untrained exact match of 0.55 once).
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 16)(inputs)
    hidden = keras.layers.Dense(16, activation="relu")(hidden)
    backbone = keras.Model(inputs, hidden)
    model = keraslm.registry.task_heads.build("qa_span", backbone=backbone)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keraslm.registry.losses.build("span"),
                  metrics=[keraslm.registry.metrics.build("span_exact_match",
                                                          max_answer_length=4)])
    before = model.evaluate(token_ids, gold, verbose=0, return_dict=True)
    model.fit(token_ids, gold, epochs=15, batch_size=64, verbose=0)
    after = model.evaluate(token_ids, gold, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] / 3
    assert after["span_exact_match"] > 0.9 > before["span_exact_match"] + 0.5
    # Padding positions are never predicted.
    spans = np.asarray(best_spans(model.predict(token_ids, verbose=0), 4))
    assert spans.max() < length - 2
