"""Data-driven `auto` defaults (#21): `keraslm train --task T --train F` and a
budget, nothing else, against a classical reference computed here.

The quality tests run each task with only `--task`, `--train`,
`--valid`/`--test` and a short `--time-budget` on slices of the shared
corpora (tests/training/conftest.py); the references (TF-IDF + logistic
regression, the most-frequent-tag tagger, xz, a translation that ignores its
source) are computed on the same slices. The `--time-budget 3m` check itself
is tests/training/test_time_budget.py.
"""

import collections
import csv
import json
import lzma
import math
import os
import subprocess
import sys

import pytest

import keraslm
from keraslm.tasks.base import get_task
from keraslm.training import auto
from keraslm.training.config import TrainConfig


BUDGETS = {"classify": "60s", "tag": "60s", "lm": "60s", "translate": "3m"}


def keraslm_command(*args):
    return [sys.executable, "-m", "keraslm", *args]


def auto_config(**values):
    config = TrainConfig.from_dict(values, source="the test")
    config.validate()
    return config


def decided(**values):
    config = auto_config(**values)
    task = get_task(config)
    examples = task.read_files(config.train)
    task.fit_labels(examples)
    applied, skipped, statistics = auto.decide(config, task, examples)
    return config, task, examples, {c.name: c for c in applied}, \
        {c.name: c for c in skipped}


def test_classify_choices_follow_the_data(corpus):
    """A budget of 10 minutes, a word vocabulary of the words seen twice,
    the hashed n-gram bag, early stopping; and the sequence length is the
    95th percentile of the token lengths (+2 special tokens), rounded up to
    a multiple of 8."""
    config, task, examples, applied, _ = decided(task="classify",
                                                 train=corpus["reviews_train"])
    assert auto.is_active(auto_config(task="classify", train=corpus["reviews_train"]))
    assert config.time_budget == 600.0
    words = collections.Counter(w for t in examples.texts for w in t.lower().split())
    assert config.tokenizer == "word" and config.lowercase
    assert config.vocabulary_size == sum(1 for c in words.values() if c >= 2) + 5
    assert config.model == "transformer_encoder"
    assert config.model_options["num_layers"] == 0
    assert config.model_options["ngram_buckets"] > 0
    assert config.head_options == {"pooling": "mean", "dropout": 0.0}
    assert config.early_stopping == 3
    assert config.class_weight is None  # 65% / 35%: not imbalanced enough
    assert {"time_budget", "tokenizer", "model", "batch_size", "early_stopping"} <= set(applied)

    from keraslm import text

    tokenizer = text.train_tokenizer("word", examples.texts,
                                     vocabulary_size=config.vocabulary_size, lowercase=True)
    choice = auto.decide_sequence_length(config, task, examples, tokenizer)
    lengths = sorted(len(tokenizer.encode(t)) for t in examples.texts)
    high = lengths[math.ceil(0.95 * len(lengths)) - 1] + 2
    assert config.sequence_length == choice.values["sequence_length"] == min(
        512, -(-high // 8) * 8)
    assert config.model_options["max_sequence_length"] == config.sequence_length


def test_each_flag_overrides_its_choice_and_no_auto_keeps_the_fixed_defaults(corpus):
    config, _, _, applied, skipped = decided(
        task="classify", train=corpus["reviews_train"], batch_size=8,
        model_options={"num_layers": 1}, learning_rate=5e-4, time_budget="2m")
    assert config.batch_size == 8 and config.learning_rate == 5e-4
    assert config.model_options == {"num_layers": 1} and config.model is None
    assert config.time_budget == 120.0
    assert {"model", "batch_size"} <= set(skipped) and "model" not in applied
    assert "--model-options" in skipped["model"].why
    assert config.tokenizer == "word"  # not overridden: still chosen

    fixed = TrainConfig(task="classify", train=corpus["reviews_train"])
    for values in ({"auto": False}, {"steps": 10}, {"epochs": 1}):
        config = auto_config(task="classify", train=corpus["reviews_train"], **values)
        assert not auto.is_active(config)
        assert {k: v for k, v in config.to_dict().items() if k not in values} == {
            k: v for k, v in fixed.to_dict().items() if k not in values}


def test_imbalanced_labels_get_balanced_class_weights(corpus, tmp_path):
    with open(corpus["reviews_train"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    great = [r for r in rows if r["label"] == "great"][:400]
    other = [r for r in rows if r["label"] == "other"][:100]
    path = tmp_path / "imbalanced.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(great + other)
    config, task, examples, applied, _ = decided(task="classify", train=str(path))
    assert config.class_weight == "balanced" and "4.0x" in applied["class_weight"].why
    weights = task.class_weights(examples)
    labels = task.label_vocabulary.labels
    assert weights == {labels.index("great"): 500 / (2 * 400),
                       labels.index("other"): 500 / (2 * 100)}


def tfidf_logistic_regression(train_path, test_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def rows(path):
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    train, test = rows(train_path), rows(test_path)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=4, max_iter=2000).fit(
        vectorizer.fit_transform(r["text"] for r in train), [r["label"] for r in train])
    predicted = classifier.predict(vectorizer.transform(r["text"] for r in test))
    return sum(p == r["label"] for p, r in zip(predicted, test)) / len(test)


def test_classify_with_only_the_files_beats_tfidf_logistic_regression(corpus, tmp_path):
    """`keraslm train --task classify --train F --test T --time-budget`: the
    defaults are printed and stored, and the test accuracy is within a point
    of TF-IDF + logistic regression on the same split (or above it)."""
    output = str(tmp_path / "run")
    done = subprocess.run(keraslm_command(
        "train", "--task", "classify", "--train", corpus["reviews_train"],
        "--test", corpus["reviews_test"], "--time-budget", BUDGETS["classify"],
        "-o", output), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("[auto]")]
    assert any("model: model=transformer_encoder" in line for line in printed), printed
    assert any("sequence_length: sequence_length=" in line for line in printed), printed
    info = json.load(open(os.path.join(output, "config.json")))
    chosen = {entry["name"]: entry for entry in info["derived"]["auto"]["chosen"]}
    assert {"time_budget", "tokenizer", "model", "sequence_length",
            "early_stopping"} <= set(chosen)
    assert all(entry["why"] for entry in chosen.values())
    assert info["config"]["model_options"]["ngram_buckets"] > 0
    metrics = json.load(open(os.path.join(output, "metrics.json")))
    reference = tfidf_logistic_regression(corpus["reviews_train"], corpus["reviews_test"])
    assert metrics["test"]["accuracy"] >= reference - 0.01, (metrics["test"], reference)
