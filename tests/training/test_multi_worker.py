"""`--strategy multi_worker` and `keraslm launch`: two workers on localhost
equal one process of the same global batch, survive a killed worker, and
refuse bad cluster set-ups with messages that say what to fix.

The slow tests start worker processes (`python -m keraslm ...`); the unit
tests check the pieces (TF_CONFIG, ports, batch slicing, the launcher's
environments) without any.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from keraslm.commands import launch as launch_command
from keraslm.training import distributed
from keraslm.training.config import TrainConfig

TINY = ["--task", "lm", "--tokenizer", "character", "--batch-size", "8",
        "--sequence-length", "32", "--num-layers", "1", "--num-heads", "2",
        "--hidden-dim", "32", "--intermediate-dim", "64", "--dropout", "0",
        "--global-clipnorm", "0.05", "--learning-rate", "0.01"]


def _tf_config(addresses, index):
    return json.dumps({"cluster": {"worker": addresses},
                       "task": {"type": "worker", "index": index}})


# -- unit tests of the pieces -----------------------------------------------------
def test_tf_config_missing_or_malformed_is_explained():
    with pytest.raises(distributed.ClusterError, match="TF_CONFIG environment variable, "
                                                       "which is not set"):
        distributed.read_tf_config({})
    with pytest.raises(distributed.ClusterError, match="not valid JSON"):
        distributed.read_tf_config({"TF_CONFIG": "{cluster: }"})
    with pytest.raises(distributed.ClusterError, match="'cluster' and a 'task'"):
        distributed.read_tf_config({"TF_CONFIG": json.dumps({"cluster": {}})})
    with pytest.raises(distributed.ClusterError, match="index in it"):
        distributed.read_tf_config({"TF_CONFIG": _tf_config(["a:1", "b:2"], 2)})
    with pytest.raises(distributed.ClusterError, match="is not host:port"):
        distributed.read_tf_config({"TF_CONFIG": _tf_config(["a", "b:2"], 0)})
    cluster = distributed.read_tf_config({"TF_CONFIG": json.dumps(
        {"cluster": {"chief": ["c:1"], "worker": ["w:2", "w:3"]},
         "task": {"type": "worker", "index": 1}})})
    assert (cluster.addresses, cluster.index, cluster.is_chief) == (
        ["c:1", "w:2", "w:3"], 2, False)


def test_jax_processes_from_flags_or_environment_and_backend_checked(corpus):
    with pytest.raises(distributed.ClusterError, match="--coordinator HOST:PORT "
                       "--num-processes N --process-id I .* Missing: "
                       "KERAS_DISTRIBUTION_JOB_ADDRESSES"):
        distributed.read_jax_cluster({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
                                      "KERAS_DISTRIBUTION_PROCESS_ID": "0"})
    environ = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234",
               "KERAS_DISTRIBUTION_NUM_PROCESSES": "4",
               "KERAS_DISTRIBUTION_PROCESS_ID": "3"}
    cluster = distributed.read_jax_cluster(environ)
    assert (cluster.addresses, cluster.num_workers, cluster.index) == (
        ["10.0.0.1:1234"], 4, 3)
    with pytest.raises(distributed.ClusterError, match="process id in"):
        distributed.read_jax_cluster({**environ, "KERAS_DISTRIBUTION_PROCESS_ID": "4"})
    with pytest.raises(ValueError, match="runs on the jax backend"):
        TrainConfig(train=corpus["lm_valid"], strategy="data_parallel").validate()


def test_port_in_use_and_batch_not_divisible_are_refused():
    holder = socket.socket()
    holder.bind(("", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(distributed.ClusterError,
                           match=f"Port {port} of this worker's address .* in use"):
            distributed.check_port_free(f"localhost:{port}")
    finally:
        holder.close()
    distributed.check_port_free(f"localhost:{port}")  # free again
    with pytest.raises(distributed.ClusterError,
                       match="must be divisible by 2. Received: batch_size=7, workers=2"):
        distributed.check_batch_size(7, 2)


def test_config_hash_tells_configurations_apart(corpus):
    one = TrainConfig(train=corpus["lm_valid"], seed=0)
    assert distributed.config_hash(one) == distributed.config_hash(
        TrainConfig(train=corpus["lm_valid"], seed=0, verbose=False))
    assert distributed.config_hash(one) != distributed.config_hash(
        TrainConfig(train=corpus["lm_valid"], seed=1))


def test_each_worker_trains_its_own_rows_and_partial_batches_are_padded():
    import tensorflow as tf

    ids = np.arange(10 * 3, dtype="int32").reshape(10, 3)
    dataset = tf.data.Dataset.from_tensor_slices(({"token_ids": ids}, ids + 100)).batch(4)
    parts = [list(distributed.local_batches(dataset, 4, part, 2, ignore_class=-100))
             for part in range(2)]
    for batch in range(3):
        x = np.concatenate([parts[p][batch][0]["token_ids"] for p in range(2)])
        y = np.concatenate([parts[p][batch][1] for p in range(2)])
        rows = ids[batch * 4:(batch + 1) * 4]
        np.testing.assert_array_equal(x[:len(rows)], rows)  # each row once, in order
        np.testing.assert_array_equal(y[:len(rows)], rows + 100)
        assert (y[len(rows):] == -100).all() and (x[len(rows):] == 0).all()
        assert x.shape == (4, 3)


def test_launcher_gives_each_worker_its_tf_config():
    environments = launch_command.worker_environments(3, [1001, 1002, 1003], {"A": "1"})
    for index, env in enumerate(environments):
        cluster = distributed.read_tf_config(env)
        assert cluster.index == index and env["A"] == "1"
        assert cluster.addresses == ["localhost:1001", "localhost:1002", "localhost:1003"]
    jax = launch_command.worker_environments(2, [1001, 1002], {}, strategy="data_parallel")
    assert [distributed.read_jax_cluster(env).index for env in jax] == [0, 1]
    assert {env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] for env in jax} == {"localhost:1001"}
    assert {env["KERAS_BACKEND"] for env in jax} == {"jax"}
    assert len(set(launch_command.free_ports(4))) == 4
    assert launch_command.resume_command(["train", "-o", "r", "--quiet"], "r") == [
        "train", "--resume", "r", "--quiet"]
    with pytest.raises(ValueError, match="runs `train ...`"):
        launch_command.launch(["evaluate", "r"], 2)
    with pytest.raises(ValueError, match="needs the run directory"):
        launch_command.launch(["train", "--train", "x.txt"], 2)


# -- worker processes ---------------------------------------------------------------
class Output:
    """Collects a process's output lines in a thread."""

    def __init__(self, process):
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process):
        for line in iter(process.stdout.readline, ""):
            self.lines.append(line)

    @property
    def text(self):
        return "".join(self.lines)


def _start_workers(arguments_per_worker, environ=None, count=None):
    ports = launch_command.free_ports(len(arguments_per_worker))
    addresses = [f"localhost:{port}" for port in ports]
    processes = []
    for index, arguments in enumerate(arguments_per_worker[:count]):
        env = {**os.environ, **(environ or {}),
               "TF_CONFIG": _tf_config(addresses, index)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keraslm", "train", *arguments], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return processes


def _losses(run_dir):
    """The loss of each step (the last one written, after a restart)."""
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        return {int(row["step"]): float(row["loss"]) for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_launch_survives_a_killed_worker_and_equals_one_process(corpus, tmp_path):
    """Two workers (global batch 8, global_clipnorm active, dropout 0) for
    20 steps, worker 1 SIGKILLed after the first checkpoint: the launcher
    relaunches both from it, the job ends with the requested steps, its
    losses after the restart and its final weights equal an uninterrupted
    single-process run of the same global batch, and the two workers held
    identical weights."""
    import keraslm

    run_dir = str(tmp_path / "two")
    data = ["--train", corpus["lm_train"], "--valid", corpus["lm_valid"], "--steps", "20",
            "--checkpoint-every", "5"]
    # The uninterrupted single-process run, meanwhile.
    single = subprocess.Popen(
        [sys.executable, "-m", "keraslm", "train", *TINY, *data, "--quiet", "-o",
         str(tmp_path / "one")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "keraslm", "launch", "--workers", "2", "--max-restarts",
         "1", "--", "train", *TINY, *data, "-o", run_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(process)
    killed = False
    deadline = time.monotonic() + 400
    while process.poll() is None and time.monotonic() < deadline:
        if not killed and os.path.exists(os.path.join(run_dir, "backup",
                                                      "state-00000005.json")):
            pid = next(int(line.split("pid ")[1]) for line in output.lines
                       if line.startswith("[launch] worker 1: pid"))
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    process.wait(timeout=60)
    output.thread.join(timeout=10)
    assert process.returncode == 0, output.text[-4000:]
    assert killed and "[launch] restart 1 of 1" in output.text, output.text[-4000:]
    assert single.wait(timeout=300) == 0, single.communicate()[0][-3000:]

    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["steps"] == 20
    assert metrics["distributed"]["workers"] == 2
    assert metrics["distributed"]["weight_spread_across_workers"] == 0.0
    two = keraslm.load_model(os.path.join(run_dir, "model.keras"))
    difference = max(float(np.max(np.abs(a - b)))
                     for a, b in zip(two.get_weights(), keraslm.load_model(
                         str(tmp_path / "one" / "model.keras")).get_weights()))
    assert difference < 1e-5, difference
    restarted, uninterrupted = _losses(run_dir), _losses(str(tmp_path / "one"))
    assert sorted(restarted) == list(range(1, 21))
    assert max(abs(restarted[s] - uninterrupted[s]) for s in range(1, 21)) < 1e-5


@pytest.mark.slow
def test_workers_with_different_configs_or_a_missing_worker_are_refused(corpus,
                                                                        tmp_path):
    base = [*TINY, "--strategy", "multi_worker", "--train", corpus["lm_valid"],
            "--steps", "4", "--quiet"]
    # One worker of two: it waits for the join timeout, then says so.
    alone = _start_workers([base + ["-o", str(tmp_path / "alone")]] * 2,
                           environ={"KERASLM_JOIN_TIMEOUT": "3"}, count=1)[0]
    # Two workers, the second with another seed.
    mismatched = _start_workers([base + ["-o", str(tmp_path / "mixed")],
                                 base + ["-o", str(tmp_path / "mixed"), "--seed", "1"]])
    outputs = [p.communicate(timeout=300)[0] for p in [alone, *mismatched]]
    assert alone.returncode == -signal.SIGKILL, outputs[0][-2000:]
    assert "not every worker joined within 3 s (this is worker 0 of 2" in outputs[0]
    for process, text in zip(mismatched, outputs[1:]):
        assert process.returncode != 0
        assert "The workers were started with different configurations" in text, \
            text[-2000:]


def _weights_difference(first_run, second_run):
    import keraslm

    first = keraslm.load_model(os.path.join(first_run, "model.keras")).get_weights()
    second = keraslm.load_model(os.path.join(second_run, "model.keras")).get_weights()
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second))


@pytest.mark.slow
def test_jax_data_parallel_equals_one_process(corpus, tmp_path):
    """`KERAS_BACKEND=jax`, two processes through `keraslm launch --strategy
    data_parallel` (keras.distribution + DataParallel + fit, Gloo on CPU):
    the final weights equal one JAX process of the same global batch, and
    the processes held the same weights."""
    data = ["--train", corpus["lm_train"], "--valid", corpus["lm_valid"], "--steps", "8",
            "--checkpoint-every", "4", "--quiet"]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    single = subprocess.Popen(
        [sys.executable, "-m", "keraslm", "train", *TINY, *data, "-o",
         str(tmp_path / "one")], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    launched = subprocess.run(
        [sys.executable, "-m", "keraslm", "launch", "--workers", "2", "--", "train",
         *TINY, *data, "--strategy", "data_parallel", "-o", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout[-4000:]
    assert single.wait(timeout=600) == 0, single.communicate()[0][-3000:]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["distributed"]["processes"] == 2
    assert metrics["distributed"]["weight_spread_across_workers"] == 0.0
    difference = _weights_difference(str(tmp_path / "two"), str(tmp_path / "one"))
    assert difference < 1e-5, difference


def test_class_weights_become_the_sample_weights_keras_fit_uses():
    """The multi-worker loop weights rows as `model.fit(class_weight=...)`
    does (Keras' own conversion, computed here with NumPy), filler rows of a
    partial global batch included."""
    import tensorflow as tf
    from keras.src.trainers.data_adapters.data_adapter_utils import (
        class_weight_to_sample_weights,
    )

    labels = np.array([0, 1, 1, 2, 0, 1, 1], dtype="int32")
    weights = {0: 2.5, 1: 0.5, 2: 1.25}
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"token_ids": np.arange(7 * 2).reshape(7, 2)}, labels)).batch(4)
    weighted = list(distributed.with_class_weights(dataset, weights))
    got = np.concatenate([batch[2] for batch in weighted])
    np.testing.assert_allclose(got, class_weight_to_sample_weights(labels, weights))
    assert distributed.with_class_weights(dataset, None) is dataset
    # The global batch of 4 cut for 2 workers: the last (3 rows) is filled
    # with its own first row, and that row's weight comes with it.
    parts = [list(distributed.local_batches(distributed.with_class_weights(
        dataset, weights), 4, part, 2)) for part in range(2)]
    last = np.concatenate([parts[p][1][2] for p in range(2)])
    np.testing.assert_allclose(last, class_weight_to_sample_weights(
        labels[[4, 5, 6, 4]], weights))


@pytest.mark.slow
def test_one_worker_with_class_weights_equals_one_process(corpus, tmp_path):
    """`--class-weight balanced` on imbalanced labels (4 to 1): a multi-worker
    run (one worker, through `keraslm launch`) ends at the weights of a
    single-process run, and both differ from the unweighted run, so the
    weights were applied, not dropped."""
    import keraslm

    with open(corpus["reviews_train"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [r for r in rows if r["label"] == rows[0]["label"]][:160] + \
        [r for r in rows if r["label"] != rows[0]["label"]][:40]
    train = tmp_path / "train.csv"
    with open(train, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(kept)
    options = ["--task", "classify", "--train", str(train), "--no-auto",
               "--tokenizer", "word", "--vocabulary-size", "2000",
               "--sequence-length", "32", "--batch-size", "8", "--steps", "12",
               "--checkpoint-every", "12", "--num-layers", "1", "--num-heads", "2",
               "--hidden-dim", "16", "--intermediate-dim", "32", "--dropout", "0",
               "--learning-rate", "0.01", "--quiet"]
    runs = {
        "worker": [sys.executable, "-m", "keraslm", "launch", "--workers", "1", "--",
                   "train", *options, "--class-weight", "balanced",
                   "-o", str(tmp_path / "worker")],
        "single": [sys.executable, "-m", "keraslm", "train", *options,
                   "--class-weight", "balanced", "-o", str(tmp_path / "single")],
        "unweighted": [sys.executable, "-m", "keraslm", "train", *options,
                       "-o", str(tmp_path / "unweighted")],
    }
    processes = {name: subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                 for name, command in runs.items()}
    for name, process in processes.items():
        output = process.communicate(timeout=600)[0]
        assert process.returncode == 0, (name, output[-3000:])
    weights = {name: keraslm.load_model(str(tmp_path / name / "model.keras")).get_weights()
               for name in runs}

    def distance(a, b):
        return max(float(np.max(np.abs(x - y))) for x, y in zip(weights[a], weights[b]))

    metrics = json.loads((tmp_path / "worker" / "metrics.json").read_text())
    assert metrics["distributed"]["workers"] == 1
    assert distance("worker", "single") < 1e-5
    assert distance("single", "unweighted") > 1e-3
