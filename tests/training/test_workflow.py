"""Resume after SIGKILL, NaN stop, transfer, and the command line."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import keraslm
from keraslm.training import TrainingError
from run_helpers import first_losses

TINY = ["--num-layers", "1", "--num-heads", "2", "--hidden-dim", "64",
        "--intermediate-dim", "128"]


def keraslm_command(*args):
    return [sys.executable, "-m", "keraslm", *args]


def step_losses(run_dir):
    """step -> loss, the last record of each step (resumed steps overwrite)."""
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(handle)}


def lm_arguments(corpus, output, *extra):
    return ["train", "--task", "lm", "--train", corpus["lm_train"], "--valid",
            corpus["lm_valid"], "--tokenizer", "character", "--steps", "150",
            "--checkpoint-every", "50", "--batch-size", "32", "--sequence-length", "64",
            "--quiet", "-o", output, *TINY, *extra]


# With a weight average (0.99: about a third of it after 100 steps still comes
# from before the kill), the backup must bring back the raw weights and the average.
@pytest.mark.parametrize("extra", [[], ["--ema-momentum", "0.99"]], ids=["plain", "ema"])
def test_resume_after_sigkill_continues_where_it_stopped(corpus, tmp_path, extra):
    reference = str(tmp_path / "reference")
    subprocess.run(keraslm_command(*lm_arguments(corpus, reference, *extra)), check=True,
                   capture_output=True, timeout=600)
    expected = step_losses(reference)
    assert sorted(expected) == list(range(1, 151))

    killed = str(tmp_path / "killed")
    process = subprocess.Popen(keraslm_command(*lm_arguments(corpus, killed, *extra)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps_file = os.path.join(killed, "steps.csv")
    deadline = time.time() + 600
    while time.time() < deadline:
        if os.path.exists(steps_file) and len(open(steps_file).readlines()) > 75:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(open(steps_file).readlines()) - 1
    assert 75 <= written < 150, "the run must be killed mid-way for this test"
    assert not os.path.exists(os.path.join(killed, "metrics.json"))

    result = subprocess.run(keraslm_command("train", "--resume", killed),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[resume]" in result.stdout and "continuing at step 51" in result.stdout
    resumed = step_losses(killed)
    assert sorted(resumed) == list(range(1, 151))
    # Same data, weights and optimizer state at every step: the resumed run
    # repeats only the steps after its last checkpoint (51..killed), and
    # matches the uninterrupted run step for step.
    np.testing.assert_allclose([resumed[s] for s in range(1, 151)],
                               [expected[s] for s in range(1, 151)], rtol=1e-4)
    with open(steps_file) as handle:
        redone = len(list(csv.DictReader(handle))) - 150
    assert 0 < redone < 50
    metrics = json.load(open(os.path.join(killed, "metrics.json")))
    assert metrics["final"]["loss"] == pytest.approx(
        json.load(open(os.path.join(reference, "metrics.json")))["final"]["loss"], rel=1e-4)


@keras.saving.register_keras_serializable(package="keraslm_tests")
class NaNAfter(keras.losses.Loss):
    """Cross-entropy that turns NaN after a number of calls."""

    def __init__(self, after=12, name="nan_after", **kwargs):
        super().__init__(name=name, **kwargs)
        self.after = after
        self.calls = keras.Variable(0, dtype="int32", trainable=False)
        self.inner = keraslm.registry.losses.build(
            "masked_sparse_categorical_crossentropy", ignore_class=-100)

    def call(self, y_true, y_pred):
        self.calls.assign_add(1)
        loss = self.inner.call(y_true, y_pred)
        # Added, not selected with where(): a NaN branch inside where() would
        # poison the gradients from the first step.
        return loss + keras.ops.where(self.calls > self.after, np.nan, 0.0)


def test_nan_loss_stops_with_a_clear_message(corpus, tmp_path, plugin_manager):
    class NaNPlugin:
        @keraslm.hookimpl
        def register_losses(self, register):
            register("nan_after", NaNAfter)

    plugin_manager.register(NaNPlugin(), name="nan_plugin")
    run_dir = str(tmp_path / "nan")
    with pytest.raises(TrainingError) as info:
        keraslm.train(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                      tokenizer="character", loss="nan_after", steps=40,
                      checkpoint_every=5, batch_size=32, sequence_length=32,
                      model_options={"num_layers": 1, "hidden_dim": 32,
                                     "num_heads": 2, "intermediate_dim": 64},
                      output_dir=run_dir, verbose=False)
    message = str(info.value)
    assert "became NaN or infinite at step" in message
    assert os.path.join(run_dir, "checkpoints", "last.keras") in message
    last = keraslm.load_model(os.path.join(run_dir, "checkpoints", "last.keras"),
                              compile=False)
    assert all(np.isfinite(w).all() for w in last.get_weights())
    backup = json.load(open(os.path.join(run_dir, "backup", "training_metadata.json")))
    bad_step = int(message.split("at step ")[1].split(";")[0])
    assert backup["epoch"] * 5 < bad_step  # no backup after the NaN


def test_init_from_takes_the_pretrained_backbone_and_tokenizer(corpus, tmp_path):
    options = dict(model_options={"num_layers": 1, "hidden_dim": 32, "num_heads": 2,
                                  "intermediate_dim": 64},
                   batch_size=32, sequence_length=48, verbose=False)
    pretrained = keraslm.train(task="mlm", train=corpus["reviews_train"],
                               vocabulary_size=1500, steps=20, checkpoint_every=10,
                               output_dir=str(tmp_path / "mlm"), **options)
    tuned = keraslm.train(task="classify", train=corpus["reviews_train"],
                          init_from=pretrained.run_dir, steps=4, checkpoint_every=2,
                          learning_rate=1e-12, output_dir=str(tmp_path / "classify"),
                          **options)
    assert tuned.tokenizer.get_vocabulary() == pretrained.tokenizer.get_vocabulary()
    before = {w.path: w.numpy() for w in pretrained.model.weights}
    after = {w.path: w.numpy() for w in tuned.model.weights}
    shared = [p for p in before if p in after and "transformer_layer" in p
              or p.startswith("token_embedding")]
    assert len(shared) >= 10
    for path in shared:  # a learning rate of 1e-12 leaves them where pretraining put them
        np.testing.assert_allclose(after[path], before[path], atol=1e-6, err_msg=path)
    assert "classification_head/logits/kernel" in after


def test_cli_train_evaluate_generate_export(corpus, tmp_path):
    run_dir = str(tmp_path / "cli")
    config = tmp_path / "run.toml"
    config.write_text(
        f'task = "lm"\ntrain = "{corpus["lm_train"]}"\nvalid = "{corpus["lm_valid"]}"\n'
        'tokenizer = "character"\nsteps = 30\ncheckpoint_every = 15\n'
        'sequence_length = 32\n[model_options]\nnum_layers = 1\nhidden_dim = 32\n'
        'num_heads = 2\nintermediate_dim = 64\n')
    trained = subprocess.run(keraslm_command("train", "--config", str(config),
                                             "--batch-size", "16", "-o", run_dir),
                             capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "step 30/30" in trained.stdout
    saved = json.load(open(os.path.join(run_dir, "config.json")))
    assert saved["config"]["batch_size"] == 16  # the flag overrides the file
    assert saved["config"]["model_options"]["hidden_dim"] == 32

    evaluated = subprocess.run(keraslm_command("evaluate", run_dir, "--checkpoint", "best",
                                               "--json"),
                               capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    disjoint = json.loads(evaluated.stdout)
    # The command scores the best checkpoint on the validation file: what the
    # run itself recorded for it, and better than a uniform guess.
    recorded = json.load(open(os.path.join(run_dir, "metrics.json")))["best"]
    assert disjoint["bits_per_character"] == pytest.approx(
        recorded["bits_per_character"], rel=1e-6)
    vocabulary = json.load(open(os.path.join(run_dir, "config.json")))["derived"][
        "vocabulary_size"]
    assert disjoint["bits_per_character"] < np.log2(vocabulary) - 0.5
    sliding = subprocess.run(keraslm_command("evaluate", run_dir, "--checkpoint", "best",
                                             "--eval-stride", "8", "--json"),
                             capture_output=True, text=True, timeout=600)
    assert sliding.returncode == 0, sliding.stderr[-2000:]
    sliding = json.loads(sliding.stdout)  # --json: stdout is the JSON alone
    evaluation = os.path.join(run_dir, "evaluation.json")
    assert f"metrics written to {evaluation}" in evaluated.stderr
    saved = json.load(open(evaluation))  # the last evaluation's
    assert (saved["checkpoint"], saved["metrics"]) == ("best", sliding)
    # The same tokens, scored once each, with more context.
    assert sliding["tokens"] == disjoint["tokens"]
    assert sliding["bits_per_character"] != pytest.approx(disjoint["bits_per_character"],
                                                          abs=1e-6)
    refused = subprocess.run(keraslm_command("evaluate", run_dir, "--eval-stride", "33"),
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1
    assert "[1, sequence_length=32] or None. Received: eval_stride=33" in refused.stderr

    generated = subprocess.run(keraslm_command("generate", run_dir, "--prompt", "KING",
                                               "--max-new-tokens", "30", "--sampler",
                                               "greedy"),
                               capture_output=True, text=True, timeout=600)
    assert generated.returncode == 0, generated.stderr[-2000:]
    # The command's greedy text is the model's: the same as greedy decoding of
    # the saved model in this process.
    from keraslm import generation
    from keraslm.training import load_run

    _, task, model, tokenizer = load_run(run_dir)
    expected = generation.generate(model, tokenizer, "KING", 30, sampler="greedy",
                                   **task.generate_options())
    assert generated.stdout.rstrip("\n") == expected.rstrip("\n")
    assert len(expected) > len("KING") + 5

    exported = subprocess.run(keraslm_command("export", run_dir, "--format", "onnx"),
                              capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "onnx:" in exported.stdout and "max |diff|" in exported.stdout
    assert os.path.exists(os.path.join(run_dir, "export", "model.onnx"))

    again = subprocess.run(keraslm_command("train", "--config", str(config), "-o", run_dir),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 1
    assert f"--resume {run_dir}" in again.stderr


@pytest.mark.parametrize("arguments, message", [
    (["--task", "lm"], "`train` (the training data file) is required"),
    (["--task", "summarize", "--train", "x.txt"], "Unknown task 'summarize'"),
    (["--train", "/no/such/file.txt"], "`train` file not found: /no/such/file.txt"),
    (["--train", "README.md", "--precision", "fp8"], "Received: precision='fp8'"),
])
def test_cli_rejects_bad_options(arguments, message):
    result = subprocess.run(keraslm_command("train", *arguments), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert message in result.stderr


def test_unknown_toml_option_is_suggested(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('task = "lm"\nbatchsize = 8\n')
    result = subprocess.run(keraslm_command("train", "--config", str(config)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Unknown option 'batchsize'" in result.stderr
    assert "Did you mean 'batch_size'?" in result.stderr


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_xla_and_mirrored_strategy(corpus, tmp_path, precision):
    result = keraslm.train(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                           tokenizer="character", precision=precision, xla=True,
                           strategy="mirrored", steps=20, checkpoint_every=10,
                           batch_size=16, sequence_length=32,
                           model_options={"num_layers": 1, "hidden_dim": 32,
                                          "num_heads": 2, "intermediate_dim": 64},
                           output_dir=str(tmp_path / precision), verbose=False)
    assert result.model.dtype_policy.name == precision
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    final = result.metrics["final"]
    assert np.isfinite(final["loss"]) and final["loss"] < first_losses(result.run_dir)



def test_multi_worker_without_tf_config_is_refused_with_the_way_out(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = subprocess.run(keraslm_command("train", "--train", "README.md",
                                            "--strategy", "multi_worker"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "TF_CONFIG" in result.stderr and "keraslm launch" in result.stderr


def test_tokenizer_options_reach_the_tokenizer(corpus, tmp_path):
    import argparse

    from keraslm.commands.train import config_from_args, configure

    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([
        "--task", "lm", "--train", corpus["lm_train"], "--tokenizer", "sentencepiece",
        "--vocabulary-size", "300", "--tokenizer-option", "model_type=bpe",
        "--tokenizer-option", "normalization=identity",
        "--tokenizer-option", "remove_extra_whitespaces=false",
        "--tokenizer-option", "add_dummy_prefix=false"])
    config = config_from_args(args)
    assert config.tokenizer_options == {
        "model_type": "bpe", "normalization": "identity",
        "remove_extra_whitespaces": False, "add_dummy_prefix": False}

    options = dict(config.to_dict(), steps=2, checkpoint_every=2, batch_size=4,
                   sequence_length=32, valid=corpus["lm_valid"], verbose=False,
                   output_dir=str(tmp_path / "run"), model_options=dict(
                       num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64))
    result = keraslm.train(**options)
    assert result.tokenizer.model_type == "bpe"
    # Lossless: indentation and runs of spaces survive a round trip, which
    # SentencePiece's defaults (dummy prefix, whitespace folding) would lose.
    with open(corpus["lm_train"], encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle]
    spaced = [line for line in lines if line.startswith(" ") or "  " in line]
    assert len(spaced) > 20
    for line in lines[:300] + spaced:
        assert result.tokenizer.decode(result.tokenizer.encode(line)) == line
    saved = json.load(open(os.path.join(result.run_dir, "config.json")))
    assert saved["config"]["tokenizer_options"]["add_dummy_prefix"] is False


def test_tokenizer_options_must_be_a_table():
    from keraslm.training.config import TrainConfig

    with pytest.raises(ValueError, match="`tokenizer_options` must be a dict"):
        TrainConfig(train="README.md", tokenizer_options="model_type=bpe").validate()


def test_window_options_from_the_command_line(corpus, tmp_path):
    import argparse
    import dataclasses

    from keraslm.commands.train import config_from_args, configure
    from keraslm.tasks import get_task

    parser = argparse.ArgumentParser()
    configure(parser)
    base = ["--task", "lm", "--train", corpus["lm_train"], "--sequence-length", "32"]
    default = config_from_args(parser.parse_args(base))
    options = get_task(default).options
    assert options.random_offsets is True and options.eval_stride is None
    assert default.xla is False
    args = parser.parse_args(base + ["--no-random-offsets", "--eval-stride", "8", "--xla",
                                     "--optimizer-option", "decay_embeddings=true"])
    config = config_from_args(args)
    assert config.task_options == {"random_offsets": False, "eval_stride": 8}
    assert config.xla
    assert config.optimizer_options == {"decay_embeddings": True}
    ngrams = config_from_args(parser.parse_args(base + ["--ngram-buckets", "500",
                                                        "--ngram-order", "3"]))
    assert ngrams.model_options == {"ngram_buckets": 500, "ngram_order": 3}

    options = dict(config.to_dict(), steps=4, checkpoint_every=4, batch_size=8,
                   tokenizer="character", random_offsets=True, valid=corpus["lm_valid"], verbose=False,
                   xla=False, output_dir=str(tmp_path / "run"),
                   model_options=dict(num_layers=1, num_heads=2, hidden_dim=32,
                                      intermediate_dim=64))
    result = keraslm.train(**options)
    assert result.model.optimizer.decay_embeddings is True
    valid_lines = keraslm.data.read_text(corpus["lm_valid"], keep_empty=True)
    disjoint = get_task(dataclasses.replace(
        result.config, task_options={**result.config.task_options, "eval_stride": None})
    ).evaluate(result.model, valid_lines, result.tokenizer)
    sliding = result.metrics["final"]
    # Every character but the first (nothing predicts it) is scored once
    # either way; only the context differs.
    assert sliding["tokens"] == disjoint["tokens"] == sliding["characters"] - 1
    assert np.isfinite(sliding["bits_per_character"])
    assert sliding["bits_per_character"] != disjoint["bits_per_character"]


def test_eval_stride_is_checked():
    from keraslm.training.config import TrainConfig

    with pytest.raises(ValueError, match=r"`eval_stride` must be an integer in \[1, "
                                         r"sequence_length=32\]"):
        TrainConfig(train="README.md", sequence_length=32,
                    task_options={"eval_stride": 64}).validate()
    # A task option given at the top level reaches the same check.
    with pytest.raises(ValueError, match=r"Received: eval_stride=64"):
        TrainConfig.from_dict(dict(train="README.md", sequence_length=32,
                                   eval_stride=64)).validate()


def test_pathlib_paths_are_accepted_and_stored_as_strings(tmp_path):
    import pathlib

    from keraslm.training.config import TrainConfig

    config = TrainConfig(train=pathlib.Path("README.md"), output_dir=tmp_path / "run")
    assert config.validate().train == "README.md"
    assert json.loads(json.dumps(config.to_dict()))["output_dir"] == str(tmp_path / "run")


def test_optimizer_options_are_checked(corpus, tmp_path):
    # Checked with the configuration, before any data is read.
    with pytest.raises(ValueError, match=r"Unknown option 'decay_embeddings' in "
                                         r"`optimizer_options` of optimizer 'sgd'.*"
                                         r"Options: .*momentum, .*nesterov"):
        keraslm.train(task="lm", train=corpus["lm_train"], tokenizer="character",
                      optimizer="sgd", optimizer_options={"decay_embeddings": True},
                      steps=1, verbose=False, output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="`optimizer_options` must be a dict"):
        keraslm.train(task="lm", train=corpus["lm_train"], optimizer_options="beta_2=0.9",
                      output_dir=str(tmp_path / "other"))


def test_weight_average_is_validated_checkpointed_and_kept(corpus, tmp_path):
    """`ema_momentum=m`: after step 1 the average is the weights w1, after
    step 2 it is m * w1 + (1 - m) * w2 (Keras' EMA), computed here from two
    runs without an average that stop after 1 and 2 steps of the same run."""
    options = dict(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                   tokenizer="character", schedule="constant", learning_rate=1e-2,
                   batch_size=8, sequence_length=32, checkpoint_every=1, verbose=False,
                   model_options=dict(num_layers=1, num_heads=2, hidden_dim=32,
                                      intermediate_dim=64))
    one = keraslm.train(steps=1, output_dir=str(tmp_path / "one"), **options)
    two = keraslm.train(steps=2, output_dir=str(tmp_path / "two"), **options)
    momentum = 0.75
    run_dir = str(tmp_path / "ema")
    averaged = keraslm.train(steps=2, ema_momentum=momentum, output_dir=run_dir, **options)

    names = [w.path for w in two.model.trainable_weights]
    w1 = [w.numpy() for w in one.model.trainable_weights]
    w2 = [w.numpy() for w in two.model.trainable_weights]
    average = [w.numpy() for w in averaged.model.trainable_weights]
    assert [w.path for w in averaged.model.trainable_weights] == names
    moved = 0
    for name, a, b, got in zip(names, w1, w2, average):
        np.testing.assert_allclose(got, momentum * a + (1 - momentum) * b, atol=1e-6,
                                   err_msg=name)
        moved += not np.allclose(got, b, atol=1e-6)
    assert moved >= len(names) // 2  # the average is not the last weights

    # The checkpoints hold the average, and so does the validation score.
    for name in ("last.keras", "best.keras"):
        saved = keraslm.load_model(os.path.join(run_dir, "checkpoints", name), compile=False)
        for got, want in zip(saved.trainable_weights, average):
            np.testing.assert_allclose(got.numpy(), want, atol=1e-6)
    with open(os.path.join(run_dir, "history.csv")) as handle:
        history = list(csv.DictReader(handle))
    with open(os.path.join(str(tmp_path / "two"), "history.csv")) as handle:
        raw_history = list(csv.DictReader(handle))
    assert float(history[-1]["loss"]) == pytest.approx(float(raw_history[-1]["loss"]), abs=1e-5)
    assert float(history[-1]["val_loss"]) == pytest.approx(
        averaged.metrics["final"]["loss"], abs=1e-4)
    assert float(history[-1]["val_loss"]) != pytest.approx(
        two.metrics["final"]["loss"], abs=1e-4)
    assert averaged.config.to_dict()["ema_momentum"] == momentum


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, True, "0.9"])
def test_ema_momentum_is_checked(value):
    from keraslm.training.config import TrainConfig

    with pytest.raises(ValueError, match=r"`ema_momentum` must be a number in \(0, 1\)"):
        TrainConfig(train="README.md", ema_momentum=value).validate()


def test_ema_momentum_and_optimizer_options_do_not_both_set_the_average(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"both set the weight average.*use_ema"):
        keraslm.train(task="lm", train=corpus["lm_train"], tokenizer="character",
                      ema_momentum=0.99, optimizer_options={"use_ema": True},
                      steps=1, verbose=False, output_dir=str(tmp_path / "run"))
