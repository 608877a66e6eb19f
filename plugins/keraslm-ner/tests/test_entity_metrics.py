"""Entity scores equal seqeval's (default mode, as conlleval), and the tag
schemes convert as they say."""

import itertools
import warnings

import numpy as np
import pytest

import seqeval.metrics
from seqeval.metrics.sequence_labeling import get_entities

import keraslm
from keraslm.evaluation import entity_metrics, entity_spans
from keraslm_ner import schemes

LABELS = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


def padded(sentences, labels=LABELS, length=None):
    index = {label: i for i, label in enumerate(labels)}
    length = length or max(map(len, sentences))
    ids = np.full((len(sentences), length), -100, "int32")
    for row, sentence in enumerate(sentences):
        ids[row, :len(sentence)] = [index[tag] for tag in sentence]
    return ids


def ours(gold, predicted, labels=LABELS):
    metric = keraslm.registry.metrics.build("entity_f1", labels=labels)
    metric.update_state(padded(gold, labels), padded(predicted, labels))
    return metric


def reference(gold, predicted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a score is 0/0
        report = seqeval.metrics.classification_report(gold, predicted, output_dict=True)
        return ({"precision": seqeval.metrics.precision_score(gold, predicted),
                 "recall": seqeval.metrics.recall_score(gold, predicted),
                 "f1": seqeval.metrics.f1_score(gold, predicted)},
                {kind: row for kind, row in report.items() if not kind.endswith(" avg")})


def assert_equal_to_seqeval(gold, predicted, labels=LABELS):
    metric = ours(gold, predicted, labels)
    scores = metric.scores()
    # The in-graph counts give what keraslm's one implementation gives.
    assert scores == entity_metrics(gold, predicted), (gold, predicted)
    expected, per_type = reference(gold, predicted)
    for name in ("precision", "recall", "f1"):
        assert scores[name] == pytest.approx(expected[name], abs=1e-6), (
            name, gold, predicted, scores, expected)
    assert float(metric.result()) == pytest.approx(expected["f1"], abs=1e-6)
    assert set(scores["per_type"]) == set(per_type), (scores["per_type"], per_type)
    for kind, row in per_type.items():
        assert scores["per_type"][kind]["f1"] == pytest.approx(row["f1-score"], abs=1e-6)
        assert scores["per_type"][kind]["precision"] == pytest.approx(row["precision"],
                                                                      abs=1e-6)
        assert scores["per_type"][kind]["support"] == row["support"]
    return scores


EDGE_CASES = {
    # An I- that starts a predicted entity (no B-) is an entity, as in conlleval.
    "I- without B- (right span)": ([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]),
    "I- without B- (wrong span)": ([["O", "B-PER", "I-PER"]], [["O", "O", "I-PER"]]),
    "I- after another type": ([["B-LOC", "B-PER", "O"]], [["B-LOC", "I-PER", "O"]]),
    "adjacent entities of one type": ([["B-PER", "B-PER", "O"]], [["B-PER", "I-PER", "O"]]),
    "adjacent entities, both right": ([["B-PER", "B-PER"]], [["B-PER", "B-PER"]]),
    "type changes inside": ([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]]),
    "right span, wrong type": ([["B-PER", "I-PER", "O"]], [["B-LOC", "I-LOC", "O"]]),
    "span too short": ([["B-LOC", "I-LOC", "I-LOC"]], [["B-LOC", "I-LOC", "O"]]),
    "span too long": ([["B-LOC", "O", "O"]], [["B-LOC", "I-LOC", "O"]]),
    "entity at the end, next sentence starts with I-": (
        [["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["I-PER", "O"]]),
    "one-word sentences": ([["B-PER"], ["O"], ["I-LOC"]], [["B-PER"], ["B-LOC"], ["O"]]),
    "nothing predicted": ([["B-PER", "O", "B-LOC"]], [["O", "O", "O"]]),
    "no entities at all": ([["O", "O"]], [["O", "O"]]),
    "only false positives": ([["O", "O"]], [["B-LOC", "O"]]),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_equal_seqeval(case):
    gold, predicted = EDGE_CASES[case]
    assert_equal_to_seqeval(gold, predicted)


def test_edge_cases_by_hand():
    # Adjacent same-type entities are two entities; one merged prediction finds neither.
    scores = ours(*EDGE_CASES["adjacent entities of one type"]).scores()
    assert (scores["entities"], scores["predicted_entities"], scores["f1"]) == (2, 1, 0.0)
    # Gold PER(0-1), LOC(3-3); predicted PER(0-1): precision 1, recall 1/2.
    scores = ours([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "O"]]).scores()
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["per_type"] == {
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}}


def random_tags(rng, count, labels=LABELS, max_length=9):
    return [[labels[i] for i in rng.integers(0, len(labels), rng.integers(1, max_length))]
            for _ in range(count)]


def test_random_sequences_equal_seqeval():
    """Ill-formed predictions of every kind (random tags), many batches."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        gold = random_tags(rng, rng.integers(1, 6))
        predicted = [[LABELS[i] for i in rng.integers(0, len(LABELS), len(g))]
                     for g in gold]
        assert_equal_to_seqeval(gold, predicted)
        for sentence in gold:
            assert schemes.entities(sentence) == get_entities(sentence)


def test_counts_add_up_over_batches():
    rng = np.random.default_rng(1)
    gold = random_tags(rng, 40)
    predicted = [[LABELS[i] for i in rng.integers(0, 5, len(g))] for g in gold]
    whole = ours(gold, predicted).scores()
    metric = keraslm.registry.metrics.build("entity_f1", labels=LABELS)
    for start in range(0, 40, 7):
        metric.update_state(padded(gold[start:start + 7]), padded(predicted[start:start + 7]))
    assert metric.scores() == whole
    metric.reset_state()
    assert metric.scores()["entities"] == 0


def test_iob1_input_converts_to_the_same_entities():
    """IOB1 (I- starts an entity, B- only between two of one type), scored
    by seqeval as written, equals our scores on the IOB2 conversion."""
    gold = [["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC"],
            ["O", "I-LOC", "B-LOC", "I-LOC", "I-PER"]]
    predicted = [["I-PER", "I-PER", "I-PER", "O", "I-LOC", "O"],
                 ["O", "I-LOC", "B-LOC", "I-LOC", "I-PER"]]
    converted = [[schemes.to_iob2(s, "iob1") for s in part] for part in (gold, predicted)]
    assert converted[0] == [["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC"],
                            ["O", "B-LOC", "B-LOC", "I-LOC", "B-PER"]]
    expected, _ = reference(gold, predicted)
    # Gold: PER 0-1, PER 2, LOC 4-5 | LOC 1, LOC 2-3, PER 4; predicted: PER 0-2,
    # LOC 4 | the same three: 3 right of 6 gold and 5 predicted.
    assert expected["f1"] == pytest.approx(2 * 3 / (6 + 5))
    assert ours(*converted).scores()["f1"] == pytest.approx(expected["f1"])
    assert_equal_to_seqeval(*converted)
    rng = np.random.default_rng(2)
    for sentence in random_tags(rng, 300):
        assert schemes.entities(schemes.to_iob2(sentence, "iob1")) == get_entities(sentence)


def test_words_between_ignored_positions_read_as_one_sentence():
    """-100 between words (later subwords of a word) and a zero sample
    weight drop those positions; the words around them stay one sentence."""
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "B-LOC", "B-LOC"]]
    expected = ours(gold, predicted).scores()
    with_subwords = np.full((1, 7), -100, "int32")
    with_subwords[0, [0, 2, 3, 6]] = padded(gold)[0]
    predicted_ids = np.full((1, 7), 4, "int32")  # O on the subwords: must not matter
    predicted_ids[0, [0, 2, 3, 6]] = padded(predicted)[0]
    metric = keraslm.registry.metrics.build("entity_f1", labels=LABELS)
    metric.update_state(with_subwords, predicted_ids)
    assert metric.scores() == expected
    weights = np.ones((1, 5), "float32")
    weights[0, 4] = 0
    metric.reset_state()
    metric.update_state(padded([gold[0] + ["B-PER"]]), padded([predicted[0] + ["O"]]),
                        sample_weight=weights)
    assert metric.scores() == expected


def test_logits_and_graph_mode():
    """Logits are arg-maxed; the metric runs inside a tf.function of unknown
    batch and length (as in `model.compile(metrics=...)`)."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    gold = random_tags(rng, 8)
    length = max(map(len, gold))
    logits = rng.standard_normal((8, length, len(LABELS))).astype("float32")
    predicted = [[LABELS[i] for i in row[:len(g)]] for row, g in
                 zip(np.argmax(logits, -1), gold)]
    expected = ours(gold, predicted).scores()
    for name, key in (("entity_precision", "precision"), ("entity_recall", "recall"),
                      ("entity_f1", "f1")):
        metric = keraslm.registry.metrics.build(name, labels=LABELS)
        update = tf.function(metric.update_state, input_signature=[
            tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None, len(LABELS)], tf.float32)])
        update(padded(gold, length=length), logits)
        assert float(metric.result()) == pytest.approx(expected[key], abs=1e-6)
        assert metric.scores() == expected


def test_metric_config_and_bad_labels():
    from keraslm_ner.metrics import EntityF1

    metric = keraslm.registry.metrics.build("entity_recall", labels=LABELS)
    again = type(metric).from_config(metric.get_config())
    assert again.labels == LABELS and again.types == ["LOC", "PER"]
    assert again.name == "entity_recall"
    with pytest.raises(ValueError, match=r"malformed: \['X-PER', 'B-'\]"):
        EntityF1(labels=["O", "X-PER", "B-"])
    with pytest.raises(ValueError, match="non-empty list"):
        EntityF1(labels=[])


@pytest.mark.parametrize("tags, scheme, message", [
    (["O", "X-PER"], "iob2", "'X-PER' is not an entity tag"),
    (["b-PER"], "iob1", "'b-PER' is not an entity tag"),
    (["B-"], "iob2", "'B-' is not an entity tag"),
    (["PER"], "iob2", "'PER' is not an entity tag"),
    (["O", "I-PER"], "iob2", r"'I-PER' \(after 'O'\) continues no PER entity"),
    (["I-PER"], "bio", r"'I-PER' \(first in its sentence\) continues no PER"),
    (["B-LOC", "I-PER"], "iob2", r"Expected 'B-PER' here; if the file is IOB1"),
])
def test_tags_outside_the_scheme_are_refused(tags, scheme, message):
    with pytest.raises(schemes.TagError, match=message) as info:
        schemes.to_iob2(tags, scheme)
    assert info.value.index == len(tags) - 1


def test_scheme_functions_are_the_cores():
    """One implementation: the plugin's span reader is keraslm's."""
    from keraslm.evaluation import entities

    assert schemes.entities is entity_spans
    assert schemes.split_tag is entities.split_tag


def test_schemes():
    assert schemes.to_iob2(["B-PER", "I-PER", "O"], "IOB2") == ["B-PER", "I-PER", "O"]
    assert schemes.to_iob2(["I-PER", "B-PER", "I-LOC"], "iob1") == ["B-PER", "B-PER", "B-LOC"]
    with pytest.raises(ValueError, match=r"`scheme` must be one of iob2, bio, iob1.*"
                                         r"Received: scheme='bioes'"):
        schemes.to_iob2(["O"], "bioes")
    for sentence in itertools.product(["O", "B-A", "I-A", "B-B", "I-B"], repeat=4):
        iob2 = schemes.to_iob2(list(sentence), "iob1")
        assert schemes.to_iob2(iob2, "iob2") == iob2  # the conversion is valid IOB2
        assert schemes.entities(iob2) == get_entities(list(sentence))
