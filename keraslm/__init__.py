"""keraslm: a plugin-based Keras library for language models.

`import keraslm` is light: it loads neither TensorFlow nor any exporter
runtime. The sub-packages that need Keras (`keraslm.layers`,
`keraslm.models`, ...) are imported on first attribute access.

Example:

```python
import keraslm

keraslm.registry.losses.names()
loss = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy")
```
"""

import importlib

from keraslm import _xla_flags

# Before anything imports TensorFlow: lets `xla="fusible"` training run
# (inert until a training run turns auto-clustering on; see _xla_flags).
_xla_flags.prepare()

from keraslm import registry  # noqa: E402
from keraslm.hookspecs import hookimpl  # noqa: E402
from keraslm.plugins import get_plugin_manager, load_plugins  # noqa: E402

__version__ = "0.1.0"

_LAZY_SUBMODULES = (
    "layers", "models", "heads", "testing", "exporting", "plugins", "cli",
    "builtins", "text", "data", "training", "generation", "losses", "metrics",
    "optimizers", "schedules", "tasks", "commands", "interpret",
)

__all__ = [
    "__version__", "export", "get_plugin_manager", "hookimpl", "list_plugins",
    "load_model", "load_plugins", "registry", "train", *_LAZY_SUBMODULES,
]


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"keraslm.{name}")
    raise AttributeError(f"module 'keraslm' has no attribute '{name}'")


def list_plugins(include_builtins=False):
    """Describes the registered plugins (see `keraslm.commands.plugins.list_plugins`).

    Example:

    ```python
    [p["name"] for p in keraslm.list_plugins(include_builtins=True)]
    ```
    """
    from keraslm.commands.plugins import list_plugins as describe

    return describe(include_builtins=include_builtins)


def export(model, path, format="saved_model", **options):
    """Exports `model` to `path` with the exporter registered as `format`.

    The exporter writes the file, runs it in its own runtime on inputs of
    several shapes and compares the outputs with the Keras model; see
    `keraslm.exporting.export`.

    Example:

    ```python
    result = keraslm.export(model, "out/model", format="saved_model")
    result.max_abs_diff
    ```
    """
    from keraslm import exporting

    return exporting.export(model, path, format=format, **options)


def train(config=None, *, resume=None, **options):
    """Trains a model for a task and writes a run directory.

    See `keraslm.training.train` for every option.

    Example:

    ```python
    result = keraslm.train(task="lm", train="train.txt", tokenizer="character",
                           steps=200, output_dir="runs/lm")
    result.metrics["final"]["bits_per_character"]
    ```
    """
    from keraslm import training

    return training.train(config, resume=resume, **options)


def load_model(path, **kwargs):
    """Loads a `.keras` model saved with keraslm components.

    Loads plugins first and imports every registered task head, loss,
    metric, optimizer and schedule, so classes from plugins are registered
    with Keras before deserialization (a compiled model's optimizer too).

    Example:

    ```python
    model = keraslm.load_model("run/model.keras")
    ```
    """
    import keras

    load_plugins()
    for module in ("layers", "models"):
        try:
            importlib.import_module(f"keraslm.{module}")
        except ModuleNotFoundError as error:
            if error.name != f"keraslm.{module}":
                raise
    for family in (registry.tasks, registry.task_heads, registry.losses,
                   registry.metrics, registry.optimizers, registry.schedules):
        for component in family:
            component.load()
    return keras.saving.load_model(path, **kwargs)
