"""`RunDirectory`: the one place that knows the layout of a run directory.

```
RUN_DIR/
  config.json               the resolved options + what was derived (vocabulary size, steps, ...)
  tokenizer/                the run's tokenizer
  labels.json               the label set (tasks with labels)
  checkpoints/last.keras    after each checkpoint interval
  checkpoints/best.keras    the lowest validation loss so far
  model.keras               the final model
  backup/                   resume state: the two newest complete states (weights +
                            optimizer, and the interval they end), each written atomically
  run.lock                  held by the process writing the run (pid, host, start time)
  logs/                     TensorBoard
  steps.csv                 loss and learning rate per step
  history.csv               training and validation loss per interval
  metrics.json              final, best and test metrics
  evaluation.json           what `keraslm evaluate` last reported (data, checkpoint, metrics)
  training_curve.png
  confusion_matrix.png      `keraslm plot` (classification runs), as are the next two
  roc_curve.png
  saliency.html, saliency.png
  attention.png             `keraslm plot --attention TEXT` (Transformer runs)
  export/                   what `keraslm export` writes by default
```

Example:

```python
from keraslm.training import RunDirectory, load_run

run = RunDirectory("runs/lm")
run.file("metrics")                   # 'runs/lm/metrics.json'
model = run.load_model("best")        # final | best | last
tokenizer = run.load_tokenizer()
config, task, model, tokenizer = load_run("runs/lm")   # all at once
```

Every file the trainer writes goes through `atomic_write` / `atomic_path`
(a temporary file in the same directory, flushed and fsynced, then renamed),
so a kill leaves either the previous file or the new one, never half of one.
`run.lock()` makes one process the only writer of a run.

It imports nothing of keraslm at module level: the configuration
(`TrainConfig.from_run`), the tasks and the trainer build on it.
"""

import contextlib
import datetime
import json
import os
import socket
from typing import NamedTuple

CHECKPOINTS = {"final": "model.keras", "best": "checkpoints/best.keras",
               "last": "checkpoints/last.keras"}
"""`--checkpoint` names and the files they load."""


class ResumeState(NamedTuple):
    """One resume state in `backup/` (see `RunDirectory.backups`)."""

    step: int
    """Optimizer steps it holds."""
    interval: int
    """Checkpoint intervals completed."""
    path: str
    """Its weights file (`backup/state-N.weights.h5`)."""


class RunDirectory:
    """The files of one training run.

    Args:
        path: str or path-like. The run directory.
    """

    FILES = {
        "config": "config.json",
        "tokenizer": "tokenizer",
        "labels": "labels.json",
        "checkpoints": "checkpoints",
        "last_checkpoint": "checkpoints/last.keras",
        "best_checkpoint": "checkpoints/best.keras",
        "final_model": "model.keras",
        "backup": "backup",
        "backup_metadata": "backup/training_metadata.json",
        "lock": "run.lock",
        "logs": "logs",
        "steps": "steps.csv",
        "history": "history.csv",
        "metrics": "metrics.json",
        "evaluation": "evaluation.json",
        "training_curve": "training_curve.png",
        "confusion_matrix": "confusion_matrix.png",
        "roc_curve": "roc_curve.png",
        "attention": "attention.png",
        "saliency_html": "saliency.html",
        "saliency": "saliency.png",
        "export": "export",
        "token_cache": "token_cache",
    }

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"RunDirectory({self.path!r})"

    def __fspath__(self):
        return self.path

    def file(self, key) -> str:
        """The path of one of `FILES` (`run.file("metrics")`)."""
        return os.path.join(self.path, self.FILES[key])

    def __getattr__(self, key):
        files = type(self).FILES
        if key in files:
            return os.path.join(self.path, files[key])
        raise AttributeError(f"'RunDirectory' has no attribute '{key}'")

    def exists(self) -> bool:
        """Whether a run was started here (config.json exists)."""
        return os.path.isfile(self.config_file)

    @property
    def config_file(self):
        return self.file("config")

    def require_file(self, key, what="not a keraslm run directory"):
        """Raises FileNotFoundError naming the missing file, unless it exists."""
        path = self.file(key)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{what}: {path} does not exist. "
                                    f"Received: {self.path!r}")
        return path

    def checkpoint(self, name="final") -> str:
        """The model file of a `--checkpoint` name: final, best or last."""
        if name not in CHECKPOINTS:
            raise ValueError(f"--checkpoint must be one of {sorted(CHECKPOINTS)}. "
                             f"Received: {name!r}")
        return os.path.join(self.path, CHECKPOINTS[name])

    def info(self) -> dict:
        """The whole `config.json`: `config`, `derived`, `keraslm_version`."""
        path = self.require_file("config", "not a keraslm run directory (no config.json)")
        with open(path) as handle:
            return json.load(handle)

    def write_json(self, key, value):
        """Writes `FILES[key]` as JSON, atomically (a temporary file, then a rename)."""
        atomic_write(self.file(key), json.dumps(value, indent=2, default=str))

    def backups(self):
        """The resume states in `backup/`, newest first: `[ResumeState]`.

        Each `ResumeState(step, interval, path)` gives the optimizer steps
        it holds, the checkpoint intervals completed, and its weights file.
        A state written at Ctrl-C ends inside an interval (`step` is not a
        multiple of the interval). Every state with a record
        (`state-N.json`) is listed; `backup_problem` says whether its
        weights file is missing or not the size recorded, and loading may
        still find it damaged (the trainer then falls back to the next).
        Runs of earlier versions (`latest.weights.h5` +
        `training_metadata.json`) give theirs.
        """
        folder = self.file("backup")
        states = []
        names = os.listdir(folder) if os.path.isdir(folder) else []
        interval_steps = None
        for name in names:
            if not (name.startswith("state-") and name.endswith(".json")):
                continue
            try:
                with open(os.path.join(folder, name)) as handle:
                    record = json.load(handle)
                interval = int(record["epoch"])
                step = record.get("step")
                if step is None:  # written before states recorded their step
                    interval_steps = interval_steps or self._interval_steps()
                    step = interval * interval_steps
                states.append(ResumeState(int(step), interval,
                                          os.path.join(folder, record["weights"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        legacy = os.path.join(folder, "latest.weights.h5")
        if not states and os.path.exists(legacy):
            try:
                with open(self.file("backup_metadata")) as handle:
                    interval = int(json.load(handle)["epoch"])
                states.append(ResumeState(interval * self._interval_steps(), interval,
                                          legacy))
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return sorted(states, reverse=True)

    def _interval_steps(self):
        return int(self.info()["derived"]["checkpoint_interval"])

    def remove_partial_files(self):
        """Removes temporary files that killed writers left (call with the lock)."""
        removed = []
        for folder in (self.path, self.file("backup"), self.file("checkpoints"),
                       self.file("export")):
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                lock_name = "." + os.path.basename(self.file("lock"))
                if (name.startswith(".") and ".partial" in name
                        and not name.startswith(lock_name)):  # another process's lock attempt
                    path = os.path.join(folder, name)
                    if os.path.isdir(path):
                        import shutil

                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(OSError):
                            os.remove(path)
                    removed.append(path)
        return removed

    @staticmethod
    def backup_problem(weights_path):
        """Why a listed state cannot be whole (missing, wrong size), or None."""
        record = weights_path[:-len(".weights.h5")] + ".json"
        if not os.path.exists(weights_path):
            return "its weights file is missing"
        try:
            with open(record) as handle:
                expected = json.load(handle)["bytes"]
        except (OSError, ValueError, KeyError):
            return None  # an earlier version's state: no size recorded
        size = os.path.getsize(weights_path)
        if size != expected:
            return f"{size} bytes, {expected} recorded"
        return None

    def write_backup(self, model, interval, keep=2, step=None):
        """Writes the resume state (weights and optimizer) atomically, then
        removes all but the `keep` newest states.

        Args:
            model: the model being trained (compiled, optimizer built).
            interval: int. Checkpoint intervals completed.
            keep: int. States kept. Defaults to 2.
            step: int or None. Optimizer steps done, when the state ends
                inside an interval (Ctrl-C); None: `interval` intervals.
        """
        folder = self.file("backup")
        if step is None:
            step = interval * self._interval_steps()
        name = f"state-{step:08d}"
        weights = os.path.join(folder, name + ".weights.h5")
        with atomic_path(weights, ".weights.h5") as partial:
            model.save_weights(partial)
        atomic_write(os.path.join(folder, name + ".json"), json.dumps(
            {"epoch": interval, "step": step, "weights": name + ".weights.h5",
             "bytes": os.path.getsize(weights)}))
        # The interval count earlier versions read (and `keraslm` tools may).
        self.write_json("backup_metadata", {"epoch": interval, "step": step})
        for old in self.backups()[keep:]:
            record = old.path[:-len(".weights.h5")] + ".json"
            for path in (record, old.path):  # the record first: never a record without weights
                with contextlib.suppress(OSError):
                    os.remove(path)

    def lock(self, command="train"):
        """Makes this process the only writer of the run (a context manager).

        Creates the directory and `run.lock` (pid, host, start time, command)
        atomically; another live holder is a `RunLockedError` naming it. A
        lock left by a process that no longer runs on this host is taken
        over, with a message. The lock is removed on exit.

        Example:

        ```python
        with RunDirectory("runs/lm").lock():
            ...  # write the run's files
        ```
        """
        return RunLock(self, command)

    def read_json(self, key):
        with open(self.require_file(key)) as handle:
            return json.load(handle)

    def load_model(self, checkpoint="final"):
        """Loads the model of a checkpoint (plugins are loaded first)."""
        import keraslm

        path = self.checkpoint(checkpoint)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist (has the run finished?).")
        return keraslm.load_model(path)

    def load_tokenizer(self):
        from keraslm import text

        return text.load_tokenizer(self.require_file("tokenizer"))


def _fsync_directory(path):
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _partial_name(path, suffix=""):
    directory, base = os.path.split(os.path.abspath(path))
    stem = base[:-len(suffix)] if suffix and base.endswith(suffix) else base
    return os.path.join(directory, f".{stem}.{os.getpid()}.partial{suffix}")


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; on success it replaces `path`.

    The temporary name keeps `suffix` (Keras wants `.keras` or
    `.weights.h5`), the file is fsynced before the rename and the directory
    after it. On an exception the temporary file is removed and `path` is
    left as it was.

    Example:

    ```python
    with atomic_path("runs/lm/model.keras", ".keras") as partial:
        model.save(partial)
    ```
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = _partial_name(path, suffix)
    try:
        yield partial
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise
    _fsync_directory(directory)


def atomic_write(path, text):
    """Writes `text` (str or bytes) to `path` atomically."""
    with atomic_path(path) as partial:
        with open(partial, "wb" if isinstance(text, bytes) else "w",
                  **({} if isinstance(text, bytes) else {"encoding": "utf-8"})) as handle:
            handle.write(text)


def write_evaluation_files(run_dir, files):
    """Writes a task's `evaluation_files` (`{file name: str or bytes}`, e.g.
    the translate task's `translations.txt`) into `run_dir`, each
    atomically; returns `{name: path}`. Names must be plain file names that
    are not the run's own files.

    Example:

    ```python
    write_evaluation_files("runs/mt", {"translations.txt": "Hola.\\n"})
    ```
    """
    files = check_evaluation_files(files)
    written = {}
    for name, text in files.items():
        written[name] = os.path.join(run_dir, name)
        atomic_write(written[name], text)
    return written


def check_evaluation_files(files):
    """`files` as a dict, or a TypeError/ValueError naming the bad entry
    (see `write_evaluation_files`)."""
    if files is not None and not isinstance(files, dict):
        raise TypeError(f"A task's `evaluation_files` must be a dict {{file name: text}}. "
                        f"Received: {type(files).__name__}")
    files = dict(files or {})
    reserved = {name.split("/")[0] for name in RunDirectory.FILES.values()}
    for name, text in files.items():
        if (not isinstance(name, str) or name in ("", ".", "..")
                or os.path.basename(name) != name or name in reserved):
            raise ValueError(
                f"A task's evaluation file names must be plain file names other than the "
                f"run's own files ({', '.join(sorted(reserved))}). Received: {name!r}")
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"Evaluation file {name!r} must be str or bytes. "
                            f"Received: {type(text).__name__}")
    return files


def repair_csv(path):
    """Drops a partial last line (a kill in the middle of an append)."""
    if not os.path.exists(path):
        return
    with open(path, "rb") as handle:
        content = handle.read()
    if content and not content.endswith(b"\n"):
        atomic_write(path, content[:content.rfind(b"\n") + 1])


class RunLockedError(RuntimeError):
    """Another live process writes this run directory."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class RunLock:
    """`RunDirectory.lock()`: `run.lock` held while a process writes a run."""

    def __init__(self, run, command="train"):
        self.run = run
        self.command = command
        self.path = run.file("lock")
        self.taken_over = None

    def holder(self):
        """The lock's content (pid, host, started, command), or None."""
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: written by no live keraslm (writes are atomic)

    def __enter__(self):
        os.makedirs(self.run.path, exist_ok=True)
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now().isoformat(timespec="seconds"),
                "command": self.command}
        partial = _partial_name(self.path)
        with open(partial, "w") as handle:
            json.dump(mine, handle)
        try:
            for _ in range(2):
                try:
                    os.link(partial, self.path)  # atomic, fails if the lock exists
                    return self
                except FileExistsError:
                    holder = self.holder()
                    if holder is None:
                        continue  # released meanwhile
                    if not self._stale(holder):
                        raise RunLockedError(
                            f"{self.run.path} is being written by another process: pid "
                            f"{holder.get('pid')} on host {holder.get('host')}, "
                            f"`keraslm {holder.get('command')}` since "
                            f"{holder.get('started')} ({self.path}). Wait for it to "
                            f"finish, or choose another output directory (-o); delete "
                            f"{self.path} only if that process is gone.") from None
                    self.taken_over = holder
                    os.remove(self.path)
            raise RunLockedError(f"Could not take the lock {self.path}; try again.")
        finally:
            with contextlib.suppress(OSError):
                os.remove(partial)

    def _stale(self, holder):
        if not holder:
            return True
        if holder.get("host") != socket.gethostname():
            return False  # cannot tell whether a process elsewhere runs
        pid = holder.get("pid")
        return not isinstance(pid, int) or (pid != os.getpid() and not _alive(pid))

    def __exit__(self, *exc):
        if (self.holder() or {}).get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                os.remove(self.path)
        return False
