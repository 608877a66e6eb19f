"""What the example scripts share: arguments, timing and the results file.

Each example runs `keraslm.train(...)` on a set in `../shared/data` (next to
the repository) and writes a small JSON of what it reached to
`examples/results/<name>.json`, beside the classical reference for the same
split.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(REPOSITORY, "..", "shared", "data"))
RESULTS = os.path.join(REPOSITORY, "examples", "results")


def parser(name, description):
    """The arguments every example takes."""
    arguments = argparse.ArgumentParser(
        prog=f"examples/{name}.py", description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    arguments.add_argument("--data", default=DEFAULT_DATA,
                           help="folder holding the shared data sets")
    arguments.add_argument("--output", default=None,
                           help="run directory (default: runs/<name>-<time> "
                                "under the repository)")
    arguments.add_argument("--quick", action="store_true",
                           help="a smoke run of a minute or two (tiny model, few "
                                "steps); its numbers mean nothing")
    arguments.add_argument("--results", default=None,
                           help="where to write the results JSON (default: "
                                f"examples/results/{name}.json; a --quick run "
                                "writes only into its run directory)")
    arguments.add_argument("--seed", type=int, default=0)
    return arguments


def run_directory(args, name):
    if args.output:
        return args.output
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if args.quick else ""
    return os.path.join(REPOSITORY, "runs", f"{name}{suffix}-{stamp}")


def data_file(args, *parts):
    path = os.path.join(args.data, *parts)
    if not os.path.isfile(path):
        sys.exit(f"{path} not found: pass --data, the folder holding "
                 f"{parts[0]}/ (the shared data sets).")
    return path


class Timer:
    """Wall-clock and CPU seconds (this process, all threads) of a block.

    The CPU time matters on a shared machine: the wall time of a run grows
    with other people's load, its CPU time much less. `cpu_seconds / cores`
    is the wall time the run would take with the machine to itself.
    """

    def __enter__(self):
        self.wall = time.perf_counter()
        times = os.times()
        self.cpu = times.user + times.system
        return self

    def __exit__(self, *error):
        times = os.times()
        self.wall_seconds = round(time.perf_counter() - self.wall, 1)
        self.cpu_seconds = round(times.user + times.system - self.cpu, 1)

    @property
    def cpu_seconds_per_core(self):
        return round(self.cpu_seconds / (os.cpu_count() or 1), 1)

    def as_dict(self):
        return {"wall_seconds": self.wall_seconds, "cpu_seconds": self.cpu_seconds,
                "cpu_seconds_per_core": self.cpu_seconds_per_core}


def hyperparameters(config, keys=None):
    """The `TrainConfig` fields that matter for reproducing a run."""
    values = config.to_dict()
    keys = keys or ("task", "model", "preset", "model_options", "head_options",
                    "tokenizer", "vocabulary_size", "tokenizer_options", "lowercase", "sequence_length",
                    "optimizer", "optimizer_options", "learning_rate", "weight_decay",
                    "ema_momentum",
                    "schedule", "warmup_steps", "steps", "epochs", "batch_size",
                    "task_options", "precision", "xla", "seed",
                    "init_from", "label_smoothing")
    return {key: values[key] for key in keys if key in values}


def environment():
    import keras
    import tensorflow as tf

    import keraslm

    return {
        "keraslm": keraslm.__version__, "tensorflow": tf.__version__,
        "keras": keras.__version__, "python": platform.python_version(),
        "cpu_cores": os.cpu_count(), "machine": platform.machine(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def write_results(args, name, results):
    """Prints the results and writes them to JSON (see `--results`)."""
    results = {"example": name, "quick": bool(args.quick),
               "command": " ".join(["python", f"examples/{name}.py"] + sys.argv[1:]),
               **results, "environment": environment()}
    text = json.dumps(results, indent=2, default=float)
    paths = []
    if args.results:
        paths.append(args.results)
    elif not args.quick:
        paths.append(os.path.join(RESULTS, f"{name}.json"))
    if results.get("run_dir"):
        paths.append(os.path.join(results["run_dir"], "example_results.json"))
    for path in paths:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text + "\n")
    print(text)
    for path in paths:
        print(f"[results] {path}")
    return results


def rounded(metrics, digits=4):
    """A metrics dict with floats rounded and bulky entries left out."""
    out = {}
    for key, value in (metrics or {}).items():
        if isinstance(value, float):
            out[key] = round(value, digits)
        elif isinstance(value, (int, str)):
            out[key] = value
        elif key in ("labels", "confusion_matrix"):
            out[key] = value
    return out


def evaluate_checkpoint(run_dir, test_path, checkpoint="best"):
    """Scores a run's `checkpoints/<checkpoint>.keras` on a test file.

    keraslm scores the test file with the final weights; the checkpoint with
    the lowest validation loss (`best`) is the early-stopping choice, which
    the validation data alone selects, so its test score is fair to report
    too.
    """
    from keraslm.training import RunDirectory, load_run
    from keraslm.training.run import build_loss

    if not os.path.exists(RunDirectory(run_dir).checkpoint(checkpoint)):
        return None
    config, task, model, tokenizer = load_run(run_dir, checkpoint)
    return rounded(task.evaluate(model, task.read(test_path), tokenizer,
                                 build_loss(config, task)))
