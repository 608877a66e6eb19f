"""`keraslm train --folds K`: stratified folds, K runs, mean and std that
match each fold's model recomputed with scikit-learn, continued after an
interruption, bad input refused before training."""

import collections
import contextlib
import io
import json
import os

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold

import keraslm
from keraslm import cli
from keraslm.training import stratified_folds


def test_stratified_folds_deal_every_label_evenly():
    rng = np.random.default_rng(0)
    labels = list(rng.choice(["a", "b", "c", "d"], size=103, p=[0.5, 0.3, 0.15, 0.05]))
    for folds in (2, 3, 5, 10):
        assignment = stratified_folds(labels, folds, seed=1)
        assert assignment == stratified_folds(labels, folds, seed=1)
        assert sorted(set(assignment)) == list(range(folds))
        sizes = collections.Counter(assignment)
        assert max(sizes.values()) - min(sizes.values()) <= 1
        # Each label's count per fold is what scikit-learn's StratifiedKFold gives
        # (as a multiset over folds: which fold gets one more may differ).
        theirs = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(
            np.zeros(len(labels)), labels))
        expected = {label: sorted(collections.Counter(
            labels[i] for i in held)[label] for _, held in theirs) for label in set(labels)}
        ours = {label: sorted(sum(1 for l, f in zip(labels, assignment) if l == label and f == k)
                              for k in range(folds)) for label in set(labels)}
        assert ours == expected, folds
    assert stratified_folds(labels, 5, seed=1) != stratified_folds(labels, 5, seed=2)


def _train(argv):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(argv)
    return status, printed.getvalue()


def test_folds_train_k_runs_whose_summary_sklearn_confirms(corpus, tmp_path):
    out = tmp_path / "cv"
    argv = ["train", "--task", "classify", "--train", corpus["reviews_train"],
            "--folds", "3", "--steps", "40", "--sequence-length", "64",
            "--batch-size", "32", "--learning-rate", "3e-3", "--vocabulary-size", "2000",
            "--tokenizer", "word", "--num-layers", "1", "--hidden-dim", "32",
            "--num-heads", "2", "--intermediate-dim", "64", "--quiet", "-o", str(out)]
    status, printed = _train(argv)
    assert status == 0, printed
    summary = json.loads((out / "cross_validation.json").read_text())
    assert json.loads(printed) == {"mean": summary["mean"], "std": summary["std"]}
    texts = [json.loads(line)["text"] for name in ("fold_1_valid", "fold_2_valid",
                                                   "fold_3_valid")
             for line in (out / "data" / f"{name}.jsonl").read_text().splitlines()]
    import csv

    with open(corpus["reviews_train"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Every training example is held out exactly once.
    assert sorted(texts) == sorted(row["text"] for row in rows)
    accuracies = []
    for fold in (1, 2, 3):
        train_texts = [json.loads(line)["text"] for line in
                       (out / "data" / f"fold_{fold}_train.jsonl").read_text().splitlines()]
        held = [json.loads(line) for line in
                (out / "data" / f"fold_{fold}_valid.jsonl").read_text().splitlines()]
        # Training + held-out = every example once (the reviews repeat some
        # texts, so this is counted, not a set difference).
        assert collections.Counter(train_texts) + collections.Counter(
            row["text"] for row in held) == collections.Counter(row["text"] for row in rows)
        # The fold's accuracy, recomputed from its model with scikit-learn.
        config, task, model, tokenizer = keraslm.training.load_run(str(out / f"fold_{fold}"))
        data = task.dataset(task.read(str(out / "data" / f"fold_{fold}_valid.jsonl")),
                            tokenizer, False)
        predicted = np.argmax(model.predict(data.dataset, verbose=0), axis=-1)
        labels = task.label_vocabulary.labels
        accuracy = accuracy_score([row["label"] for row in held],
                                  [labels[i] for i in predicted])
        entry = summary["per_fold"][fold - 1]
        assert entry["final"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
        assert entry["held_out"] == len(held)
        accuracies.append(accuracy)
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-9)
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1), abs=1e-9)
    assert "confusion_matrix" not in summary["mean"]
    # The same command again trains nothing and gives the same summary.
    stamps = {fold: os.path.getmtime(out / f"fold_{fold}" / "model.keras") for fold in (1, 2, 3)}
    os.remove(out / "fold_2" / "metrics.json")  # as if fold 2 had not finished
    os.remove(out / "cross_validation.json")
    status, printed = _train(argv)
    assert status == 0, printed
    assert json.loads((out / "cross_validation.json").read_text())["mean"]["accuracy"] == \
        pytest.approx(summary["mean"]["accuracy"], abs=1e-9)
    assert os.path.getmtime(out / "fold_1" / "model.keras") == stamps[1]
    assert os.path.getmtime(out / "fold_3" / "model.keras") == stamps[3]
    # Another seed in the same directory is refused, and nothing is trained.
    status, printed = _train(argv + ["--seed", "5"])
    assert status != 0


@pytest.mark.parametrize("extra, message", [
    (["--folds", "1"], "`folds` must be an integer >= 2. Received: folds=1"),
    (["--folds", "5000"], "`folds` must be at most the number of training examples (1200)"),
    (["--folds", "3", "--valid", "{reviews_test}"], "drop --valid"),
    (["--folds", "3", "--task", "lm"], "applies to task 'classify'. Received: task='lm'"),
])
def test_bad_folds_are_refused_before_training(corpus, tmp_path, capsys, extra, message):
    out = tmp_path / "cv"
    extra = [corpus["reviews_test"] if e == "{reviews_test}" else e for e in extra]
    argv = ["train", "--task", "classify", "--train", corpus["reviews_train"], "--steps", "2",
            "--quiet", "-o", str(out), *extra]
    assert cli.main(argv) != 0
    assert message in capsys.readouterr().err
    assert not (out / "fold_1").exists()


def test_an_existing_run_directory_is_not_overwritten(corpus, tmp_path, capsys):
    out = tmp_path / "cv"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert cli.main(["train", "--task", "classify", "--train", corpus["reviews_train"],
                     "--folds", "3", "--steps", "2", "--quiet", "-o", str(out)]) != 0
    assert "is not a cross-validation directory" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["notes.txt"]
