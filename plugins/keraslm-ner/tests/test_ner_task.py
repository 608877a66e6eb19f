"""The `ner` task end to end, on entities made from the Brown corpus.

No named-entity set ships in a reachable registry, so the fixture is made
from `../shared/data/brown` by `tests/entity_data.py` (each maximal run of
proper-noun words is one entity in IOB2, `GROUP` when its head is a plural
proper noun, else `NAME`). Training: the first 6,000 sentences of
`brown/train.conll` (127,247 words; 6,080 NAME and 272 GROUP entities);
validation: the first 300 of `brown/test.conll` (other documents: 6,404
words, 351 NAME and 23 GROUP entities).
"""

import collections
import dataclasses
import warnings

import pytest

import shared_data
from entity_data import brown_entities, write_conll
from keraslm.testing import run_exporter_test, run_task_test
from keraslm_ner.task import EntityTask

TRAIN_SENTENCES = 6000
VALID_SENTENCES = 300


@pytest.fixture(scope="module")
def brown_ner(tmp_path_factory):
    root = tmp_path_factory.mktemp("ner")
    train = brown_entities(shared_data.path("brown", "train.conll"), TRAIN_SENTENCES)
    valid = brown_entities(shared_data.path("brown", "test.conll"), VALID_SENTENCES)
    return {"train": write_conll(root / "train.conll", train),
            "valid": write_conll(root / "valid.conll", valid),
            "train_sentences": train, "valid_sentences": valid, "root": root}


@pytest.fixture(scope="module")
def trained(brown_ner):
    # A word-level vocabulary holding every training word (the fastest
    # tokenizer; the task, not the tokenizer, is under test). 400 steps of
    # 32 sentences is about two passes over the 6,000 sentences: with 200
    # the model did not yet beat the capitalization baseline below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the longest training sentences are truncated
        return run_task_test(
            EntityTask, train=brown_ner["train"], valid=brown_ner["valid"],
            output_dir=brown_ner["root"] / "run", steps=400, min_loss_drop=0.3,
            model_options={"num_layers": 1, "num_heads": 2, "hidden_dim": 128,
                           "intermediate_dim": 256},
            tokenizer="word", vocabulary_size=16000, sequence_length=96, batch_size=32)


def seqeval_scores(gold, predicted):
    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on 0/0
        return {"precision": precision_score(gold, predicted),
                "recall": recall_score(gold, predicted), "f1": f1_score(gold, predicted)}


def capitalization_baseline(sentences):
    """Each run of capitalized words not first in their sentence is a NAME."""
    predicted = []
    for words, _ in sentences:
        tags, inside = [], False
        for index, word in enumerate(words):
            capital = index > 0 and word[:1].isupper()
            tags.append(("I-NAME" if inside else "B-NAME") if capital else "O")
            inside = capital
        predicted.append(tags)
    return predicted


def most_frequent_tag_baseline(train, sentences):
    """Each word gets its most frequent training tag; unseen words `O`."""
    counts = collections.defaultdict(collections.Counter)
    for words, tags in train:
        for word, tag in zip(words, tags):
            counts[word][tag] += 1
    return [[counts[w].most_common(1)[0][0] if w in counts else "O" for w in words]
            for words, _ in sentences]


def test_ner_learns_entities_better_than_baselines(trained, brown_ner):
    final = trained.metrics["final"]
    valid = brown_ner["valid_sentences"]
    gold = [tags for _, tags in valid]
    assert final["words"] == sum(map(len, gold)), "validation words were truncated"
    assert final["entities"] == 374 and final["unseen_tag_words"] == 0, final
    # Two baselines on the same validation sentences, scored by seqeval:
    # - capitalization (F1 0.570): what orthography alone gives. The model
    #   cannot use it for the validation names it never saw in training
    #   (they are all one [UNK] id), so beating it means it learned names and
    #   their contexts;
    # - the most frequent training tag of each word (F1 0.427): what
    #   memorizing the training names gives; beating it by 0.1 means the
    #   model tags names from their context.
    # Measured: entity F1 0.67 (seeds 1, 2: 0.61, 0.65).
    capitalization = seqeval_scores(gold, capitalization_baseline(valid))["f1"]
    memorized = seqeval_scores(gold, most_frequent_tag_baseline(
        brown_ner["train_sentences"], valid))["f1"]
    assert final["entity_f1"] > capitalization, (final, capitalization)
    assert final["entity_f1"] > memorized + 0.1, (final, memorized)
    assert final["accuracy"] > 0.95, final  # tagging every word O scores 0.904
    assert set(final["per_type"]) <= {"NAME", "GROUP"}
    assert final["per_type"]["NAME"]["support"] == 351


def test_evaluation_equals_seqeval_on_the_model_predictions(trained, brown_ner):
    """The reported entity scores are seqeval's, on the model's own tags, and
    the word accuracy is the tag task's."""
    from seqeval.metrics import classification_report

    from keraslm.tasks.tag import TaggingTask
    from keraslm.training import load_run

    config, task, model, tokenizer = load_run(trained.run_dir, "final")
    examples = task.read(config.valid)
    gold, predicted, _, _ = task.predict_tags(model, examples, tokenizer)
    final = trained.metrics["final"]
    expected = seqeval_scores(gold, predicted)
    for name in ("precision", "recall", "f1"):
        assert final[f"entity_{name}"] == pytest.approx(expected[name], abs=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, predicted, output_dict=True)
    for kind, scores in final["per_type"].items():
        assert scores["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-9)
        assert scores["support"] == report[kind]["support"]
    # The words and their accuracy are the tag task's own (predict_words).
    tag_options = {name: value for name, value in config.task_options.items()
                   if name in TaggingTask.option_names()}
    tagger = TaggingTask(dataclasses.replace(config, task="tag", task_options=tag_options))
    tagger.label_vocabulary = task.label_vocabulary
    true, words_predicted, unseen, _ = tagger.predict_words(model, examples, tokenizer)
    assert final["words"] == len(true)
    assert final["accuracy"] == pytest.approx(float(((true == words_predicted)
                                                     & ~unseen).mean()), abs=1e-9)


def test_trained_ner_model_exports_to_saved_model(trained, brown_ner, tmp_path):
    task = EntityTask(trained.config)
    inputs = task.sample_inputs(task.read(trained.config.valid), trained.tokenizer)
    exported = run_exporter_test("saved_model", trained.model, inputs,
                                 path=tmp_path / "saved_model")
    assert exported.max_abs_diff < 1e-4
