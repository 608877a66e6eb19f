"""`RunDirectory`: the one place that knows the layout of a run directory.

```
RUN_DIR/
  config.json               the resolved options + what was derived (vocabulary size, steps, ...)
  tokenizer/                the run's tokenizer
  labels.json               the label set (tasks with labels)
  checkpoints/last.keras    after each checkpoint interval
  checkpoints/best.keras    the lowest validation loss so far
  model.keras               the final model
  backup/                   resume state (weights, optimizer, interval count)
  logs/                     TensorBoard
  steps.csv                 loss and learning rate per step
  history.csv               training and validation loss per interval
  metrics.json              final, best and test metrics
  training_curve.png
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

It imports nothing of keraslm at module level: the configuration
(`TrainConfig.from_run`), the tasks and the trainer build on it.
"""

import json
import os

CHECKPOINTS = {"final": "model.keras", "best": "checkpoints/best.keras",
               "last": "checkpoints/last.keras"}
"""`--checkpoint` names and the files they load."""


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
        "logs": "logs",
        "steps": "steps.csv",
        "history": "history.csv",
        "metrics": "metrics.json",
        "training_curve": "training_curve.png",
        "export": "export",
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
        path = self.file(key)
        temporary = path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(value, handle, indent=2, default=str)
        os.replace(temporary, path)

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
