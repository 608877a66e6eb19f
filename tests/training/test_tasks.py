"""Every task trains on a slice of real data and its metric moves the right way."""

import csv
import dataclasses
import json
import math
import os

import numpy as np
import pytest

import keraslm
from run_helpers import first_losses, most_frequent_label_share

SMALL = {"num_layers": 2, "num_heads": 2, "hidden_dim": 64, "intermediate_dim": 128}


def common(tmp_path, **options):
    return {**dict(output_dir=str(tmp_path / "run"), preset="tiny", model_options=SMALL,
                   batch_size=32, learning_rate=2e-3, checkpoint_every=40, verbose=False),
            **options}


def test_lm_learns_shakespeare(corpus, tmp_path):
    result = keraslm.train(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                           tokenizer="character", sequence_length=64, steps=120,
                           **common(tmp_path))
    final = result.metrics["final"]
    vocabulary = result.tokenizer.vocabulary_size
    # Better than a uniform guess over the characters, and than the start.
    assert final["bits_per_character"] < math.log2(vocabulary) - 1.5
    assert final["loss"] < first_losses(result.run_dir) - 1.0
    # bits per character is the total NLL over characters (here 1 id = 1 char).
    assert final["bits_per_character"] == pytest.approx(
        final["loss"] * final["tokens"] / final["characters"] / math.log(2))
    assert os.path.getsize(os.path.join(result.run_dir, "training_curve.png")) > 10_000
    # steps.csv holds each step's own loss: over a checkpoint interval their
    # mean is the interval's training loss that Keras reports.
    import csv

    with open(os.path.join(result.run_dir, "steps.csv")) as handle:
        steps = [float(row["loss"]) for row in csv.DictReader(handle)]
    with open(os.path.join(result.run_dir, "history.csv")) as handle:
        intervals = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(steps) == 120 and len(intervals) == 3
    for index, interval_loss in enumerate(intervals):
        assert np.mean(steps[index * 40:(index + 1) * 40]) == pytest.approx(
            interval_loss, rel=1e-4)
    saved = json.load(open(os.path.join(result.run_dir, "metrics.json")))
    assert saved["final"]["bits_per_character"] == final["bits_per_character"]
    assert set(saved) >= {"final", "best", "steps"}


def test_classification_beats_the_majority_class(corpus, tmp_path):
    result = keraslm.train(task="classify", train=corpus["reviews_train"],
                           test=corpus["reviews_test"], vocabulary_size=2000,
                           sequence_length=96, steps=160,
                           head_options={"pooling": "mean"}, **common(tmp_path))
    test = result.metrics["test"]
    labels = [line.rsplit(",", 1)[1].strip()
              for line in open(corpus["reviews_test"]).read().splitlines()[1:] if "," in line]
    majority = max(labels.count(l) for l in set(labels)) / len(labels)
    assert test["accuracy"] > majority + 0.03, (test, majority)
    assert 0 < test["macro_f1"] <= 1
    assert np.sum(test["confusion_matrix"]) == test["examples"] == 300
    assert test["labels"] == ["great", "other"]
    # macro F1 against scikit-learn on the same predictions
    from sklearn.metrics import f1_score

    matrix = np.array(test["confusion_matrix"])
    true = np.repeat(np.arange(2), matrix.sum(1))
    predicted = np.concatenate([np.repeat(np.arange(2), row) for row in matrix])
    assert test["macro_f1"] == pytest.approx(f1_score(true, predicted, average="macro"))
    # Every reported metric against scikit-learn on the model's own outputs,
    # recomputed here from the final model.
    import keras
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    from keraslm.training import load_task

    task = load_task(result.run_dir)
    truth, positive = [], []
    for x, y in task.dataset(task.read(corpus["reviews_test"]), result.tokenizer,
                             training=False).dataset:
        probabilities = keras.ops.softmax(result.model(x, training=False), axis=-1)
        truth.extend(np.asarray(y).tolist())
        positive.extend(np.asarray(probabilities)[:, 1].tolist())
    truth, positive = np.array(truth), np.array(positive)
    assert test["roc_auc"] == pytest.approx(roc_auc_score(truth, positive), abs=1e-6)
    assert test["roc_auc"] > 0.6  # it learned to rank, not only to guess
    predicted = positive > 0.5  # the argmax of two classes
    p, r, f, _ = precision_recall_fscore_support(truth, predicted, average="macro",
                                                 zero_division=0)
    assert (test["macro_precision"], test["macro_recall"], test["macro_f1"]) == \
        (pytest.approx(p), pytest.approx(r), pytest.approx(f))
    f = precision_recall_fscore_support(truth, predicted, average="weighted",
                                        zero_division=0)[2]
    assert test["weighted_f1"] == pytest.approx(f)
    p, r, f, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    for i, label in enumerate(test["labels"]):
        row = test["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == \
            (pytest.approx(p[i]), pytest.approx(r[i]), pytest.approx(f[i]), support[i])


def test_bigram_bag_matches_tfidf_logistic_regression_on_reviews(tmp_path):
    """All 4,000 training reviews and the 1,000 test reviews: the fastText-style
    bag (words + hashed bigrams, no Transformer layer) against scikit-learn's
    TF-IDF + logistic regression (the issue's reference), fitted here on the
    same files; and against the same bag without bigrams."""
    import shared_data
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = (shared_data.path("reviews", f"{split}.csv") for split in ("train", "test"))
    rows = {path: list(csv.DictReader(open(path, newline="", encoding="utf-8")))
            for path in (train, test)}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=4, max_iter=2000).fit(
        vectorizer.fit_transform(r["text"] for r in rows[train]),
        [r["label"] for r in rows[train]])
    predicted = classifier.predict(vectorizer.transform(r["text"] for r in rows[test]))
    reference = np.mean([p == r["label"] for p, r in zip(predicted, rows[test])])

    def bag(ngram_buckets, name):
        options = dict(num_layers=0, num_heads=1, hidden_dim=32, intermediate_dim=32,
                       max_sequence_length=256, ngram_buckets=ngram_buckets)
        return keraslm.train(
            task="classify", train=train, test=test, tokenizer="word",
            vocabulary_size=20000, lowercase=True, sequence_length=256,
            model="transformer_encoder", preset=None, model_options=options,
            head_options={"pooling": "mean"}, learning_rate=3e-3, epochs=4,
            schedule="warmup_linear", checkpoint_every=113,
            output_dir=str(tmp_path / name), verbose=False).metrics["test"]["accuracy"]

    bigrams, words = bag(200_000, "bigrams"), bag(0, "words")
    # Trained on 90% of the file (10% is validation), it still comes within a
    # point of the reference trained on all of it, and bigrams are what got it
    # there.
    assert bigrams >= reference - 0.01, (bigrams, words, reference)
    assert bigrams >= words + 0.01, (bigrams, words, reference)


def test_tagging_learns_brown_tags(corpus, tmp_path):
    result = keraslm.train(task="tag", train=corpus["brown_train"],
                           test=corpus["brown_test"], vocabulary_size=3000,
                           sequence_length=64, steps=160, **common(tmp_path))
    test = result.metrics["test"]
    assert test["accuracy"] > 0.6, test
    assert test["loss"] < first_losses(result.run_dir) - 1.0
    # Predictions come per sentence, aligned with the file's sentences: the
    # true ids are the file's tags, truncation only cuts a sentence's end.
    from keraslm.training import load_run

    _, task, model, tokenizer = load_run(result.run_dir)
    examples = task.read(corpus["brown_test"])
    true, predicted, unseen, loss = task.predict_sentences(model, examples, tokenizer)
    assert len(true) == len(predicted) == len(unseen) == len(examples.tags) == 300
    labels = task.label_vocabulary.labels
    for tags, ids, guesses, flags in zip(examples.tags, true, predicted, unseen):
        assert 0 < len(ids) == len(guesses) == len(flags) <= len(tags)
        assert [labels[i] for i, f in zip(ids, flags) if not f] == [
            tag for tag, f in zip(tags, flags) if not f]
    assert sum(map(len, true)) == test["words"]
    assert loss == pytest.approx(test["loss"], rel=1e-5)


def test_masked_lm_learns_from_the_context(corpus, tmp_path):
    """Character-level MLM on Shakespeare: the masked characters are
    predicted from their neighbours, well above the most frequent
    character's share (what a model that learned only frequencies scores).
    Measured: 0.30 against 0.16 after 800 steps; with the output tied to the
    token embedding (BERT's head) the same run stays at 0.16, and so does a
    keras-hub BertBackbone + MaskedLMHead (benchmarks/mlm_tying.py)."""
    result = keraslm.train(task="mlm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                           tokenizer="character", sequence_length=32,
                           **common(tmp_path, steps=800, checkpoint_every=200,
                                    learning_rate=5e-3))
    final = result.metrics["final"]
    assert final["loss"] < first_losses(result.run_dir) - 0.5
    baseline = most_frequent_label_share(result.run_dir, corpus["lm_valid"])
    assert final["accuracy"] > baseline + 0.05, (final["accuracy"], baseline)
    assert final["masked_tokens"] > 1000


def test_translation_learns(corpus, tmp_path):
    result = keraslm.train(task="translate", train=corpus["bible_train_large"],
                           valid=corpus["bible_valid"], vocabulary_size=3000,
                           sequence_length=48, decode_examples=100,
                           **common(tmp_path, steps=600, checkpoint_every=200,
                                    learning_rate=3e-3))
    final = result.metrics["final"]
    assert final["loss"] < first_losses(result.run_dir) - 1.5
    # Better than always predicting the most frequent target token (measured:
    # 0.273 after 600 steps on 6,000 pairs at 3e-3).
    baseline = most_frequent_label_share(result.run_dir, corpus["bible_valid"])
    assert final["accuracy"] > baseline + 0.05, (final["accuracy"], baseline)
    import contextlib
    import io

    import sacrebleu

    from keraslm import cli, data, generation
    from keraslm.training import load_run

    # The decoder reads the source: the same targets, teacher-forced, cost
    # more with another verse's source (measured: 3.99 against 4.87).
    config, task, model, tokenizer = load_run(result.run_dir)
    pairs = data.read_pairs(corpus["bible_valid"])
    rotated = data.TextPairs(pairs.sources[1:] + pairs.sources[:1], pairs.targets, None,
                             pairs.path)
    task.options = dataclasses.replace(task.options, decode_examples=0)
    other_loss = task.evaluate(model, rotated, tokenizer)["loss"]
    assert other_loss > final["loss"] + 0.3, (final["loss"], other_loss)
    # Summarization-style scores: ROUGE of the decoded outputs, as rouge-score.
    from rouge_score import rouge_scorer

    task.options = dataclasses.replace(task.options, decode_examples=20, scores="rouge")
    scored = task.evaluate(model, pairs, tokenizer)
    assert "bleu" not in scored
    decoded = task.evaluation_files["translations.txt"].splitlines()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    for name in ("rouge1", "rouge2", "rougeL"):
        assert scored[name] == pytest.approx(np.mean([
            scorer.score(reference, hypothesis)[name].fmeasure
            for hypothesis, reference in zip(decoded, pairs.targets[:20])]), abs=1e-12)
    # The final evaluation decoded the first 100 validation sources (greedy)
    # into translations.txt; its BLEU and chrF are sacrebleu's on that file.
    with open(os.path.join(result.run_dir, "translations.txt"), encoding="utf-8") as handle:
        written = handle.read().splitlines()
    assert final["decoded_examples"] == len(written) == 100
    assert final["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(written, [pairs.targets[:100]]).score, abs=1e-9)
    assert final["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(written, [pairs.targets[:100]]).score, abs=1e-9)
    assert final["chrf"] > 8 and final["bleu"] > 1, final
    # It translates: decoded validation sources, scored with sacrebleu's chrF
    # against their references and against other sentences' (measured:
    # greedy 14.4 against 10.8; 4 beams with no_repeat_ngram_size=3 17.2
    # against 12.6).
    sources, references = pairs.sources[:40], pairs.targets[:40]
    for options in ({}, {"num_beams": 3, "no_repeat_ngram_size": 3}):
        hypotheses = (written[:40] if not options else
                      generation.translate(model, tokenizer, sources, 40, **options))
        assert all(isinstance(h, str) and h.strip() for h in hypotheses), hypotheses[:5]
        own = sacrebleu.corpus_chrf(hypotheses, [references]).score
        other = sacrebleu.corpus_chrf(hypotheses, [references[1:] + references[:1]]).score
        print(f"{options}: chrF {own:.1f} against the references, {other:.1f} against others'")
        assert own > other + 1.0, (options, own, other, hypotheses[:5])
        assert len(set(hypotheses)) > len(hypotheses) // 2, hypotheses[:5]
    # keraslm generate on the run translates each line of --input (greedy by
    # default for a translate run), as translate does.
    (tmp_path / "sources.txt").write_text("\n".join(sources[:6]) + "\n", encoding="utf-8")
    for extra, options in ((["--num-beams", "3", "--no-repeat-ngram-size", "3"],
                            {"num_beams": 3, "no_repeat_ngram_size": 3}), ([], {})):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert cli.main(["generate", result.run_dir, "--input",
                             str(tmp_path / "sources.txt"), "--max-new-tokens", "40",
                             *extra]) == 0
        assert printed.getvalue().splitlines() == generation.translate(
            model, tokenizer, sources[:6], 40, **options), extra
