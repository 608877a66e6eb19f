"""Runs that never lose work: atomic state, one writer per run, no leftovers.

- SIGKILL at random moments (many inside checkpoint writes, with a backup
  every step), resumed each time: the run always resumes and ends with the
  weights of an uninterrupted run.
- Two `keraslm train` processes on one directory: one runs, the other is
  refused with the lock holder named.
- A stale lock (its process is gone) is taken over; a live one is refused.
- A damaged newest backup falls back to the previous one, by name.
- A run that fails before it wrote anything leaves no directory behind.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import keraslm
from keraslm.training import RunDirectory
from keraslm.training.run_directory import RunLockedError

TINY = ["--num-layers", "1", "--num-heads", "2", "--hidden-dim", "32",
        "--intermediate-dim", "64"]


@pytest.fixture(scope="module")
def small_valid(corpus, tmp_path_factory):
    """40 validation lines: with a checkpoint every step, validation would
    otherwise be most of each step's time."""
    path = tmp_path_factory.mktemp("valid") / "valid.txt"
    with open(corpus["lm_valid"], encoding="utf-8") as handle:
        path.write_text("".join(handle.readlines()[:40]), encoding="utf-8")
    return str(path)


def command(corpus, output, steps, *extra, valid=None):
    return [sys.executable, "-m", "keraslm", "train", "--task", "lm", "--train",
            corpus["lm_train"], "--valid", valid or corpus["lm_valid"],
            "--tokenizer", "character",
            "--steps", str(steps), "--checkpoint-every", "1", "--batch-size", "8",
            "--sequence-length", "32", "--quiet", "-o", output, *TINY, *extra]


def rows(path):
    return len(open(path).readlines()) if os.path.exists(path) else 0


def weights(run_dir):
    model = keraslm.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    return {w.path: w.numpy() for w in model.weights}


def test_random_sigkills_always_resume_to_the_uninterrupted_weights(corpus, small_valid,
                                                                   tmp_path):
    """12 SIGKILLs at random moments of a process's life: during start-up
    (a stale lock, no new state), and during training, where every step
    writes a resume state and two checkpoints, so many kills land inside a
    write. Each time the run is resumed; at the end its weights are those
    of an uninterrupted run."""
    # 12 kills, 6 in training: each costs a process start (~8 s of imports
    # on 2 cores); 20 took 220 s of the suite.
    steps, kills = 60, 12
    reference = str(tmp_path / "reference")
    subprocess.run(command(corpus, reference, steps, valid=small_valid), check=True,
                   capture_output=True, timeout=600)
    killed = str(tmp_path / "killed")
    steps_file = os.path.join(killed, "steps.csv")
    rng = random.Random(0)
    startup, in_training = None, 0
    for attempt in range(kills):
        arguments = (command(corpus, killed, steps, valid=small_valid) if attempt == 0 else
                     [sys.executable, "-m", "keraslm", "train", "--resume", killed,
                      "--quiet"])
        before = rows(steps_file)
        began = time.time()
        process = subprocess.Popen(arguments, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        if attempt % 2 == 0 or startup is None:
            # In training: within half a second of its first new step, so
            # mostly inside the state and checkpoint writes after each step.
            while rows(steps_file) <= before and process.poll() is None:
                time.sleep(0.01)
            startup = time.time() - began
            moment = time.time() + rng.uniform(0.0, 0.5)
        else:  # during start-up: the lock is taken, nothing new is written yet
            moment = began + rng.uniform(0.2, 0.9) * startup
        while time.time() < moment and process.poll() is None:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        output = process.communicate()[0]
        assert process.returncode in (-signal.SIGKILL, 0), output[-2000:]
        in_training += rows(steps_file) > before
        if process.returncode == 0:
            break
    assert attempt == kills - 1 and in_training >= 4, (attempt, in_training)
    final = subprocess.run([sys.executable, "-m", "keraslm", "train", "--resume", killed],
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    state = RunDirectory(killed)
    assert state.backups()[0].step == steps
    assert not os.path.exists(state.file("lock"))
    assert not [name for _, _, names in os.walk(killed) for name in names
                if ".partial" in name]  # a killed writer's leftovers are cleared
    expected, got = weights(reference), weights(killed)
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=2e-5, err_msg=name)


def step_numbers(run_dir):
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        return [int(line.split(",")[0]) for line in handle.readlines()[1:]]


def test_ctrl_c_saves_the_current_step_and_resume_repeats_none(corpus, small_valid,
                                                              tmp_path):
    """SIGINT in the middle of a checkpoint interval: the state of the step
    in progress is written, the exact `--resume` command printed, and the
    resumed run trains each step once and ends at an uninterrupted run's
    weights."""
    steps, every = 300, 100
    reference = str(tmp_path / "reference")
    subprocess.run(command(corpus, reference, steps, "--checkpoint-every", str(every),
                           valid=small_valid), check=True, capture_output=True,
                   timeout=600)
    run_dir = str(tmp_path / "interrupted")
    process = subprocess.Popen(
        command(corpus, run_dir, steps, "--checkpoint-every", str(every),
                valid=small_valid),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    steps_file = os.path.join(run_dir, "steps.csv")
    while rows(steps_file) <= 130 and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    assert f"Continue with:\n  keraslm train --resume {run_dir}" in err
    assert "Traceback" not in err
    saved = RunDirectory(run_dir).backups()[0]
    logged = step_numbers(run_dir)
    assert saved.step == logged[-1] and 130 <= saved.step < 2 * every, (saved, logged[-3:])
    assert saved.interval == 1  # inside the second interval
    assert f"the resume state holds {saved.step} steps" in err
    resumed = subprocess.run([sys.executable, "-m", "keraslm", "train", "--resume",
                              run_dir], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"continuing at step {saved.step + 1}" in resumed.stdout
    assert step_numbers(run_dir) == list(range(1, steps + 1))  # no step twice
    expected, got = weights(reference), weights(run_dir)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=2e-5, err_msg=name)


def test_two_trainers_on_one_directory_one_is_refused(corpus, small_valid, tmp_path):
    run_dir = str(tmp_path / "shared")
    processes = [subprocess.Popen(command(corpus, run_dir, 40, "--seed", str(seed),
                                          valid=small_valid),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in (1, 2)]
    results = [(p, *p.communicate(timeout=600)) for p in processes]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 1], [(p.returncode, err[-800:]) for p, _, err in results]
    winner = next(i for i, (p, _, _) in enumerate(results) if p.returncode == 0)
    loser_error = results[1 - winner][2]
    assert "is being written by another process: pid" in loser_error
    assert "Traceback" not in loser_error
    info = RunDirectory(run_dir).info()
    assert info["config"]["seed"] == (1, 2)[winner]
    # All 40 steps in the log come from the winner: one row per step.
    assert step_numbers(run_dir) == list(range(1, 41))


def lm_options(corpus, run_dir, **extra):
    return dict(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                tokenizer="character", steps=4, checkpoint_every=2, batch_size=8,
                sequence_length=32, verbose=True, output_dir=run_dir,
                model_options=dict(num_layers=1, num_heads=2, hidden_dim=32,
                                   intermediate_dim=64), **extra)


def test_a_live_lock_is_refused_and_a_stale_one_taken_over(corpus, tmp_path, capsys):
    import json
    import socket

    run_dir = tmp_path / "locked"
    run_dir.mkdir()
    lock = run_dir / "run.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                    "started": "2026-12-02T10:00:00", "command": "train"}))
        with pytest.raises(RunLockedError, match=rf"pid {sleeper.pid} on host "):
            keraslm.train(**lm_options(corpus, str(run_dir)))
        assert sorted(os.listdir(run_dir)) == ["run.lock"]  # nothing else written
    finally:
        sleeper.kill()
        sleeper.wait()
    # The holder is gone: the lock is stale and taken over.
    result = keraslm.train(**lm_options(corpus, str(run_dir)))
    assert f"taking over the lock of pid {sleeper.pid}" in capsys.readouterr().out
    assert result.metrics["steps"] == 4
    assert not lock.exists()


def test_a_damaged_newest_backup_falls_back_to_the_previous_one(corpus, tmp_path, capsys):
    run_dir = str(tmp_path / "damaged")
    keraslm.train(**lm_options(corpus, run_dir))
    run = RunDirectory(run_dir)
    (newest, _, newest_path), (previous, _, previous_path) = run.backups()
    assert (newest, previous) == (4, 2)  # steps
    # Same size, garbage content: listed, then found damaged when loaded.
    size = os.path.getsize(newest_path)
    with open(newest_path, "wb") as handle:
        handle.write(b"\0" * size)
    os.remove(os.path.join(run_dir, "metrics.json"))
    capsys.readouterr()
    result = keraslm.train(resume=run_dir)
    out = capsys.readouterr().out
    assert f"{newest_path} is damaged" in out
    assert f"restored {previous_path} (step 2)" in out
    assert "continuing at step 3" in out
    assert result.metrics["steps"] == 4
    (_, _, newest_path), (_, _, previous_path) = run.backups()
    with open(newest_path, "rb") as handle:
        content = handle.read()
    with open(newest_path, "wb") as handle:
        handle.write(content[:len(content) // 3])
    size = os.path.getsize(previous_path)
    with open(previous_path, "wb") as handle:
        handle.write(b"\0" * size)
    # Every backup damaged (one truncated, one garbage): the last checkpoint
    # (model and optimizer, step 4) is restored, each damaged file named.
    os.remove(os.path.join(run_dir, "metrics.json"))
    capsys.readouterr()
    result = keraslm.train(resume=run_dir)
    out = capsys.readouterr().out
    assert f"{newest_path} is damaged" in out and f"{previous_path} is damaged" in out
    assert f"restored {run.file('last_checkpoint')} (step 4)" in out
    assert result.metrics["steps"] == 4
    # ... and with that damaged too: an error naming each file and what is
    # wrong with it, not a silent restart from step 0.
    with open(run.file("last_checkpoint"), "wb") as handle:
        handle.write(b"not a zip file")
    with pytest.raises(keraslm.training.TrainingError,
                       match=r"No intact resume state") as refused:
        keraslm.train(resume=run_dir)
    message = str(refused.value)
    assert f"{newest_path} ({len(content) // 3} bytes, {len(content)} recorded)" in message
    assert f"{previous_path} (" in message and f"{run.file('last_checkpoint')} (" in message


def test_a_run_that_fails_before_writing_leaves_no_directory(tmp_path):
    table = tmp_path / "reviews.csv"
    table.write_text("text,stars\nfine,5\n")  # no `label` column
    run_dir = tmp_path / "never"
    with pytest.raises(ValueError, match="label"):
        keraslm.train(task="classify", train=str(table), output_dir=str(run_dir),
                      verbose=False)
    assert not run_dir.exists()


@pytest.mark.parametrize("options, message", [
    ({"model_options": {"num_layer": 1}},
     r"Unknown option 'num_layer' in `model_options` of model 'transformer_lm'\. "
     r"Did you mean 'num_layers'\?"),
    ({"model_options": {"max_sequence_length": 16}, "sequence_length": 32},
     r"must be at least `sequence_length`=32 .* Received: max_sequence_length=16"),
    ({"model": "transformer_llm"},
     r"Unknown model 'transformer_llm'\. Available: .* Did you mean 'transformer_lm'\?"),
    ({"batch_size": True}, r"`batch_size` must be a positive integer\. Received: batch_size=True"),
    ({"learning_rate": "1e-3"}, r"`learning_rate` must be a positive number\. "
                                r"Received: learning_rate='1e-3'"),
    ({"global_clipnorm": -1.0}, r"`global_clipnorm` must be a positive number, or 0 or None"),
    ({"head_options": "pooling=mean"}, r"`head_options` must be a dict"),
    ({"lowercase": 1}, r"`lowercase` in the configuration must be of type bool\. "
                       r"Received: lowercase=1"),
])
def test_bad_options_are_refused_before_any_work(corpus, tmp_path, options, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        keraslm.train(task="lm", train=corpus["lm_train"], output_dir=str(run_dir),
                      verbose=False, **options)
    assert not run_dir.exists()


def test_a_bad_test_file_is_refused_before_training(corpus, tmp_path, capsys):
    bad = tmp_path / "test.csv"
    bad.write_text("text,label\n\"unterminated,great\n")
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=str(bad)):
        keraslm.train(task="classify", train=corpus["reviews_train"], test=str(bad),
                      tokenizer="word", steps=2, output_dir=str(run_dir))
    assert "[tokenizer]" not in capsys.readouterr().out  # before the tokenizer trained
    assert not run_dir.exists()


def test_a_run_that_fails_after_writing_its_tokenizer_leaves_no_directory(corpus, tmp_path):
    """A model option the builder refuses is found after the tokenizer and
    labels were written, but before config.json: all of it is removed."""
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="num_heads"):
        keraslm.train(task="classify", train=corpus["reviews_train"], tokenizer="word",
                      steps=2, output_dir=str(run_dir), verbose=False,
                      model_options={"num_layers": 1, "hidden_dim": 30, "num_heads": 4,
                                     "intermediate_dim": 32})
    assert not run_dir.exists(), sorted(os.listdir(run_dir))
