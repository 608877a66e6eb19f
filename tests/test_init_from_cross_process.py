"""`keraslm train --init-from` with pretraining and fine-tuning in separate processes.

Keras names a bare op in a functional graph from a per-process counter
(`not_equal`, `not_equal_1`, ...), and a backbone loaded from a `.keras` file
keeps the names of the process that saved it. A head that added a bare op
to the loaded backbone's graph (the classifier's `not_equal` padding mask)
took the name of the backbone's own op in a new process, and Keras refused
the model: `The name "not_equal" is used 2 times in the model`. Pretraining
and fine-tuning in one process hid it (the counter had moved on), so every
run here is its own `python -m keraslm train` process, as a user runs them.
"""

import csv
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keraslm
import shared_data
from keraslm import registry
from keraslm.training import RunDirectory, load_run

TINY = ["--preset", "tiny", "--num-layers", "1", "--hidden-dim", "32", "--num-heads", "2",
        "--intermediate-dim", "64", "--sequence-length", "32", "--vocabulary-size", "500",
        "--checkpoint-every", "20", "--quiet"]
# Layers the heads add on top of a backbone: everything else in a fine-tuned
# model must come from the pretrained run.
HEAD_LAYERS = {"classify": {"padding_mask", "classification_head"},
               "tag": {"tagging_dropout", "tagging_logits"},
               "lm": set()}


def _slice_lines(source, target, count, until_blank=False):
    """The first `count` lines of `source` (then on to a blank line: whole CoNLL sentences)."""
    with open(source, encoding="utf-8") as reader, \
            open(target, "w", encoding="utf-8") as writer:
        for number, line in enumerate(reader):
            writer.write(line)
            if number + 1 >= count and (not until_blank or not line.strip()):
                break
    return str(target)


def _train_command(task, train, output_dir, *options):
    return [sys.executable, "-m", "keraslm", "train", "--task", task, "--train", train,
            "-o", output_dir, *TINY, *options]


def _run_processes(commands):
    """Runs `keraslm train` commands side by side, each in its own process.

    Returns one `subprocess.CompletedProcess` per command, its output (read
    back from `OUTPUT_DIR.log`) in `stdout`.
    """
    started = []
    for command in commands:
        log = open(command[command.index("-o") + 1] + ".log", "w+")
        started.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT),
                        log))
    results = []
    for process, log in started:
        try:
            process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.seek(0)
        results.append(subprocess.CompletedProcess(process.args, process.returncode,
                                                   log.read(), ""))
        log.close()
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Pretraining runs (mlm, lm), then the fine-tuning runs that start from them.

    Each run is a separate process; the fine-tunes start after the
    pretraining processes have ended.
    """
    root = tmp_path_factory.mktemp("init_from")
    reviews = _slice_lines(shared_data.path("reviews", "train.csv"),
                           root / "reviews.csv", 301)  # the header + 300 reviews
    brown = _slice_lines(shared_data.path("brown", "train.conll"),
                         root / "brown.conll", 300, until_blank=True)
    shakespeare = _slice_lines(shared_data.path("shakespeare", "train.txt"),
                               root / "shakespeare.txt", 400)
    paths = {name: str(root / name) for name in
             ("mlm", "lm", "classify", "tag", "lm_tuned")}
    pretraining = _run_processes([
        _train_command("mlm", reviews, paths["mlm"], "--tokenizer", "word",
                       "--steps", "20"),
        # A character LM learns the character statistics within 40 steps, so
        # a fine-tune that starts from it starts far below an untrained loss.
        _train_command("lm", shakespeare, paths["lm"], "--tokenizer", "character",
                       "--steps", "40", "--learning-rate", "3e-3"),
    ])
    for result in pretraining:
        assert result.returncode == 0, result.stdout[-3000:]
    fine_tuning = _run_processes([
        _train_command("classify", reviews, paths["classify"], "--init-from",
                       paths["mlm"], "--steps", "20", "--head-option", "pooling=mean"),
        _train_command("tag", brown, paths["tag"], "--init-from", paths["mlm"],
                       "--steps", "20"),
        _train_command("lm", shakespeare, paths["lm_tuned"], "--init-from",
                       paths["lm"], "--steps", "20"),
    ])
    return {"paths": paths,
            "results": dict(zip(("classify", "tag", "lm_tuned"), fine_tuning))}


def _directory_contents(path):
    contents = {}
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            with open(full, "rb") as handle:
                contents[os.path.relpath(full, path)] = handle.read()
    return contents


def _first_step_loss(run_dir):
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        return float(next(csv.DictReader(handle))["loss"])


def _mean_last_losses(run_dir, count=5):
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        rows = list(csv.DictReader(handle))[-count:]
    return sum(float(row["loss"]) for row in rows) / len(rows)


def _initial_model(config, task, tokenizer):
    """The model a fine-tuning run started from, built again in a fresh Keras session.

    The trainer's own code path (`keraslm.training.run._build_model`) with the
    run's saved configuration, task (its labels size the head) and tokenizer:
    it loads the `--init-from` run's `model.keras` and adds the head.
    `clear_session()` resets Keras' name counters to those of a new process,
    so this reproduces what `keraslm train` did there.
    """
    from keraslm.training.run import _build_model

    keras.backend.clear_session()
    model, _ = _build_model(config, task, tokenizer)
    return model


def _weights_by_layer(model):
    return {layer.name: [np.asarray(w) for w in layer.get_weights()]
            for layer in model.layers if layer.get_weights()}


@pytest.mark.parametrize("task, run, pretrained", [
    ("classify", "classify", "mlm"),
    ("tag", "tag", "mlm"),
    ("lm", "lm_tuned", "lm"),
])
def test_fine_tuning_in_a_new_process_starts_from_the_pretrained_run(
        runs, task, run, pretrained):
    result = runs["results"][run]
    run_dir, pretrained_dir = runs["paths"][run], runs["paths"][pretrained]
    assert result.returncode == 0, result.stdout[-3000:]
    assert _directory_contents(os.path.join(run_dir, "tokenizer")) == \
        _directory_contents(os.path.join(pretrained_dir, "tokenizer"))

    pretrained_weights = _weights_by_layer(keraslm.load_model(
        os.path.join(pretrained_dir, "model.keras")))
    # The fine-tuned run as saved (its model.keras loads) and as it started.
    config, task_object, tuned, tokenizer = load_run(run_dir)
    assert config.init_from == pretrained_dir
    initial = _initial_model(config, task_object, tokenizer)
    initial_weights = _weights_by_layer(initial)
    backbone = {name for name in initial_weights if name not in HEAD_LAYERS[task]}
    # Everything but the head comes from the pretrained run, weight for weight.
    assert {"token_embedding", "transformer_layer_0"} <= backbone
    assert backbone <= set(pretrained_weights)
    for name in backbone:
        assert len(initial_weights[name]) == len(pretrained_weights[name]), name
        for got, expected in zip(initial_weights[name], pretrained_weights[name]):
            np.testing.assert_array_equal(got, expected, err_msg=name)
    # The head is new: no pretrained layer of its name, no pretrained weight.
    head = HEAD_LAYERS[task] & set(initial_weights)
    assert bool(head) == (task != "lm")  # the causal LM head reuses the embedding
    assert not head & set(pretrained_weights)
    every_pretrained = [w for ws in pretrained_weights.values() for w in ws]
    for name in head:
        for weight in initial_weights[name]:
            if np.any(weight):  # a zero bias is what any fresh layer starts with
                assert not any(weight.shape == w.shape and np.array_equal(weight, w)
                               for w in every_pretrained), name

    # The fine-tuned run saved a model of the same layers.
    assert [layer.name for layer in tuned.layers] == \
        [layer.name for layer in initial.layers]


def test_language_model_fine_tune_starts_where_pretraining_ended(runs):
    pretrained, tuned = runs["paths"]["lm"], runs["paths"]["lm_tuned"]
    assert runs["results"]["lm_tuned"].returncode == 0, \
        runs["results"]["lm_tuned"].stdout[-3000:]
    untrained = _first_step_loss(pretrained)   # ln(vocabulary) or so
    trained = _mean_last_losses(pretrained)
    first = _first_step_loss(tuned)
    assert untrained - trained > 0.5           # pretraining learned something
    assert first < untrained - 0.5             # far below a fresh model's loss
    assert abs(first - trained) < 0.3          # about where pretraining ended


@pytest.mark.parametrize("head, options", [
    ("masked_lm", {}),
    ("classification", {"num_classes": 3, "pooling": "mean"}),
    ("token_classification", {"num_classes": 4}),
    ("causal_lm", {}),
    ("qa_span", {}),
])
def test_every_head_builds_on_a_backbone_loaded_in_a_fresh_session(runs, head, options):
    """Each head on the pretrained MLM run's backbone, loaded with fresh op names."""
    pretrained = runs["paths"]["mlm"]
    keras.backend.clear_session()  # name counters as in a new process
    _, task, model, _ = load_run(pretrained)
    backbone = task.backbone_from_run(model, RunDirectory(pretrained).info())
    model = registry.task_heads.build(head, backbone=backbone, **options)
    token_ids = np.array([[7, 9, 11, 0, 0], [8, 10, 12, 13, 14]], dtype="int32")
    assert np.isfinite(np.asarray(model(token_ids))).all()
