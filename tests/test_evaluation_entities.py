"""Entity-level scores (`keraslm.evaluation.entities`) equal seqeval's, on
random and hand-made tag sequences and on a trained tagger's own outputs."""

import itertools
import warnings

import numpy as np
import pytest

import seqeval.metrics
from seqeval.metrics.sequence_labeling import get_entities

from keraslm.evaluation import entities, entity_metrics, entity_spans

LABELS = ["B-LOC", "B-PER", "B-ORG", "I-LOC", "I-PER", "I-ORG", "O"]


def seqeval_report(gold, predicted):
    """seqeval's micro scores and its classification report (default mode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a score is 0/0
        micro = {"precision": seqeval.metrics.precision_score(gold, predicted),
                 "recall": seqeval.metrics.recall_score(gold, predicted),
                 "f1": seqeval.metrics.f1_score(gold, predicted)}
        report = seqeval.metrics.classification_report(gold, predicted, output_dict=True)
    return micro, report


def assert_equals_seqeval(gold, predicted):
    ours = entity_metrics(gold, predicted)
    micro, report = seqeval_report(gold, predicted)
    for name in ("precision", "recall", "f1"):
        assert ours[name] == pytest.approx(micro[name], abs=1e-12), (name, gold, predicted)
        assert ours["micro"][name] == ours[name]
    per_type = {kind: row for kind, row in report.items() if not kind.endswith(" avg")}
    assert list(ours["per_type"]) == sorted(per_type), (ours["per_type"], per_type)
    for kind, row in per_type.items():
        mine = ours["per_type"][kind]
        assert (mine["precision"], mine["recall"], mine["f1"], mine["support"]) == (
            pytest.approx(row["precision"], abs=1e-12), pytest.approx(row["recall"], abs=1e-12),
            pytest.approx(row["f1-score"], abs=1e-12), row["support"]), (kind, gold, predicted)
    for average in ("macro", "weighted"):
        row = report[f"{average} avg"]
        if np.isnan(row["f1-score"]):  # seqeval's macro average of no types at all
            assert not per_type and ours[average]["f1"] == 0.0
            continue
        assert [ours[average][k] for k in ("precision", "recall", "f1")] == pytest.approx(
            [row["precision"], row["recall"], row["f1-score"]], abs=1e-12), (average, gold,
                                                                            predicted)
    assert ours["entities"] == report["micro avg"]["support"]
    return ours


def random_sentences(rng, count, max_length=10):
    return [[LABELS[i] for i in rng.integers(0, len(LABELS), rng.integers(1, max_length))]
            for _ in range(count)]


def test_random_sequences_equal_seqeval():
    """Random tags hold every ill-formed case: I- without B-, I- of another
    type than the entity it follows, adjacent entities, entities at the
    sentence ends. 200 batches of 1-6 sentences."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        gold = random_sentences(rng, rng.integers(1, 7))
        predicted = [[LABELS[i] for i in rng.integers(0, len(LABELS), len(g))] for g in gold]
        assert_equals_seqeval(gold, predicted)


def test_well_formed_gold_and_noisy_predictions_equal_seqeval():
    """IOB2 gold (as a data set holds) and predictions that are gold with a
    share of tags replaced: mostly right, as a trained tagger's are."""
    rng = np.random.default_rng(1)
    for _ in range(100):
        gold = []
        for _ in range(rng.integers(1, 6)):
            sentence, inside = [], None
            for _ in range(rng.integers(1, 12)):
                choice = rng.integers(0, 5)
                if choice < 2 or (choice == 2 and inside is None):
                    sentence.append("O")
                    inside = None
                elif choice == 2:
                    sentence.append(f"I-{inside}")
                else:
                    inside = ["LOC", "PER", "ORG"][rng.integers(0, 3)]
                    sentence.append(f"B-{inside}")
            gold.append(sentence)
        predicted = [[LABELS[rng.integers(0, len(LABELS))] if rng.random() < 0.2 else tag
                      for tag in sentence] for sentence in gold]
        assert_equals_seqeval(gold, predicted)


EDGE_CASES = {
    "I- without B- (right span)": ([["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]),
    "I- without B- (wrong span)": ([["O", "B-PER", "I-PER"]], [["O", "O", "I-PER"]]),
    "I- of another type": ([["B-LOC", "I-LOC", "O"]], [["B-LOC", "I-PER", "O"]]),
    "type changes inside": ([["B-PER", "I-PER", "I-PER"]], [["B-PER", "I-LOC", "I-LOC"]]),
    "right span, wrong type": ([["B-PER", "I-PER"]], [["B-ORG", "I-ORG"]]),
    "adjacent entities of one type": ([["B-PER", "B-PER", "O"]], [["B-PER", "I-PER", "O"]]),
    "empty predictions": ([["B-PER", "O", "B-LOC"], ["B-ORG"]], [["O", "O", "O"], ["O"]]),
    "no entities at all": ([["O", "O"], ["O"]], [["O", "O"], ["O"]]),
    "only false positives": ([["O", "O"]], [["B-LOC", "I-LOC"]]),
    "entity across a sentence end": ([["O", "B-PER"], ["I-PER"]], [["O", "B-PER"], ["I-PER"]]),
    "empty sentence": ([[], ["B-PER"]], [[], ["B-PER"]]),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_equal_seqeval(case):
    assert_equals_seqeval(*EDGE_CASES[case])


def test_edge_cases_by_hand():
    # An I- after O starts an entity (conlleval): the right span is found.
    assert entity_metrics(*EDGE_CASES["I- without B- (right span)"])["f1"] == 1.0
    # Predicted PER 0, LOC 1-2 against gold PER 0-2: nothing right.
    report = entity_metrics(*EDGE_CASES["type changes inside"])
    assert (report["entities"], report["predicted_entities"], report["f1"]) == (1, 2, 0.0)
    assert report["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                         "support": 0}
    report = entity_metrics(*EDGE_CASES["empty predictions"])
    assert (report["precision"], report["recall"], report["f1"]) == (0.0, 0.0, 0.0)
    assert report["entities"] == 3 and report["predicted_entities"] == 0
    # The docstring's example.
    report = entity_metrics([["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]],
                            [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]])
    assert report["f1"] == pytest.approx(2 / 3)
    assert report["macro"]["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert report["correct_entities"] == 2


def test_entity_spans_equal_seqeval_get_entities():
    """Every sentence of 4 tags over two types, and malformed tags as O."""
    for sentence in itertools.product(["O", "B-A", "I-A", "B-B", "I-B"], repeat=4):
        assert entity_spans(list(sentence)) == get_entities(list(sentence)), sentence
    assert entity_spans(["B-PER", "X-PER", "I-PER", "b-LOC", "PER"]) == [
        ("PER", 0, 0), ("PER", 2, 2)]
    assert entity_spans([]) == []


def test_entity_label_sets():
    assert entities.is_entity_label_set(["B-LOC", "I-LOC", "O"])
    assert entities.is_entity_label_set(["I-MISC", "O"])       # IOB1 files
    assert not entities.is_entity_label_set(["O"])             # nothing to score
    assert not entities.is_entity_label_set(["at", "nn", "np", "np-tl"])  # Brown POS
    assert not entities.is_entity_label_set(["B-NP", "I-NP", "O", "PUNCT"])
    assert not entities.is_entity_label_set([])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"list of sentences.*Received a list of str"):
        entity_metrics(["B-PER", "O"], ["B-PER", "O"])
    with pytest.raises(ValueError, match="Sentence 1 has 2 true tags and 1 predicted"):
        entity_metrics([["O"], ["B-PER", "O"]], [["O"], ["B-PER"]])
    with pytest.raises(ValueError, match="same number of sentences. Received: 2 and 1"):
        entity_metrics([["O"], ["O"]], [["O"]])


def test_tag_run_on_entity_labels_reports_seqeval_scores(entity_tag_run):
    """A `tag` run whose labels are IOB2 entity tags reports entity scores,
    and they are seqeval's on the model's own predicted tags."""
    from keraslm.training import load_run

    result = entity_tag_run["result"]
    final = result.metrics["final"]
    config, task, model, tokenizer = load_run(result.run_dir)
    assert task.label_vocabulary.labels == ["B-GROUP", "B-NAME", "I-GROUP", "I-NAME", "O"]
    examples = task.read(config.valid)
    gold, predicted, _, _ = task.predict_tags(model, examples, tokenizer)
    assert sum(map(len, gold)) == final["words"]
    micro, report = seqeval_report(gold, predicted)
    # The model found entities (the comparison is not one of zeros).
    assert final["predicted_entities"] > 100 and final["entity_f1"] > 0.1, final
    assert final["entities"] == report["micro avg"]["support"] == 374
    for name in ("precision", "recall", "f1"):
        assert final[f"entity_{name}"] == pytest.approx(micro[name], abs=1e-12)
    assert final["entity_macro_f1"] == pytest.approx(report["macro avg"]["f1-score"],
                                                     abs=1e-12)
    assert set(final["per_type"]) == {"NAME", "GROUP"}
    for kind, row in final["per_type"].items():
        assert row["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-12)
        assert row["support"] == report[kind]["support"]
    # The gold tags are the file's (no word truncated away): 374 entities in the
    # first 300 test sentences.
    assert gold == [tags for _, tags in entity_tag_run["valid_sentences"]]
    # Word accuracy is still the share of words tagged right.
    flat = [(g, p) for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps)]
    assert final["accuracy"] == pytest.approx(np.mean([g == p for g, p in flat]))


def test_tag_run_on_part_of_speech_tags_reports_no_entities():
    """Brown's tags are not entity tags: no entity scores are claimed."""
    from keraslm import text
    from keraslm.tasks.tag import TaggingTask
    from keraslm.training import TrainConfig

    task = TaggingTask(TrainConfig(task="tag"))
    task.label_vocabulary = text.LabelVocabulary(["at", "nn", "np", "vb"])
    assert not task.reports_entities()
    task.label_vocabulary = text.LabelVocabulary(["B-NP", "I-NP", "O"])
    assert task.reports_entities()
