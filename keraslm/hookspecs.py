"""The keraslm plugin hooks.

Every component family of keraslm (tasks, task heads, losses, optimizers,
learning rate schedules, exporters, tokenizers, metrics and command-line
commands) is collected through one hook below. The built-in components are registered
through these same hooks by the internal plugins in `keraslm.builtins`, so an
external plugin has exactly the same power as the core.

A plugin is a module (or any object) with functions named after the hooks and
decorated with `keraslm.hookimpl`:

```python
import keraslm

@keraslm.hookimpl
def register_losses(register):
    register("squared_hinge", make_squared_hinge, description="Squared hinge.")
```

and an entry point in its `pyproject.toml`:

```toml
[project.entry-points.keraslm]
my_plugin = "my_plugin_module"
```

Registries are built lazily, the first time a component of that family is
looked up, and rebuilt whenever the set of registered plugins changes. Hooks
are therefore called at lookup time, not at import time: keep the hook bodies
cheap and import heavy libraries (TensorFlow, tf2onnx, LiteRT) inside the
factories they register, not at module level.

The `register` callback passed to every component hook has the signature

    register(name, factory, *, description=None, **metadata)

- `name`: str. The public name users type (`--loss focal`). Lower case
  letters, digits, `_`, `-` and `.`; unique across all plugins (a second
  plugin registering the same name is an error naming both).
- `factory`: a callable (class or function) that builds the component from
  keyword arguments; `keraslm.registry.<family>.build(name, **kwargs)` calls it.
- `description`: str, optional. One line shown by `keraslm plugins --all`.
- `**metadata`: extra keyword arguments, stored on the registry entry for the
  code that uses the component (for example `file_extension=".onnx"` for an
  exporter). New keywords may be added to `register` in later versions, so
  hook implementations should pass keywords, never positional metadata.
  One metadata key has a meaning in every family: `accepts`, a tuple of
  the keyword arguments the factory takes. Without it keraslm reads the
  factory's signature (a factory with `**kwargs` accepts everything). The
  trainer passes a component only what it accepts (`ignore_class`,
  `label_smoothing`, `total_steps`, `warmup_steps`, `weight_decay`, ...),
  and an option the user set that the chosen component does not accept is
  an error, so a plugin component gets exactly the arguments a built-in
  gets.
"""

import pluggy

PROJECT_NAME = "keraslm"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_tasks(register):
    """Register tasks (`keraslm train --task NAME`).

    Called the first time `keraslm.registry.tasks` is used after the set of
    plugins changed, and by `keraslm train` before it parses its arguments
    (each task's options become flags). The factory is a subclass of
    `keraslm.tasks.Task`, called as `factory(config)` with the run's
    `keraslm.training.TrainConfig`; it declares its options (a dataclass),
    the formats it reads, its default model, head and loss, its `tf.data`
    pipeline, its evaluation and metrics, and what `generate` and `export`
    mean for it. Its `name` attribute must equal the registered name.
    `keraslm.testing.run_task_test` checks a task end to end.

    ```python
    @keraslm.hookimpl
    def register_tasks(register):
        register("ner", "keraslm_ner.task:EntityTask",
                 description="Named entities (BIO spans), entity-level F1.")
    ```
    """


@hookspec
def register_task_heads(register):
    """Register task heads (the layers that turn a backbone into a task model).

    Called the first time `keraslm.registry.task_heads` is used after the set
    of plugins changed. The factory is called as
    `factory(backbone=backbone, **config)`: `backbone` is a functional Keras
    model from token ids `(batch, length)` to hidden states
    `(batch, length, hidden_dim)`, and `config` the head's options (for
    example `num_classes=2, pooling="cls"`). It returns the task model, best
    built by extending `backbone.output` so the result saves as one `.keras`
    file. Metadata conventionally includes `task="classify"` (the
    `keraslm train --task` value the head serves).
    """


@hookspec
def register_losses(register):
    """Register losses.

    Called the first time `keraslm.registry.losses` is used after the set of
    plugins changed. The factory returns a `keras.losses.Loss` (or a callable
    `loss(y_true, y_pred)`) from keyword arguments such as
    `from_logits=True`.
    """


@hookspec
def register_optimizers(register):
    """Register optimizers.

    Called the first time `keraslm.registry.optimizers` is used after the set
    of plugins changed. The factory returns a `keras.optimizers.Optimizer`;
    it receives `learning_rate` (a float or a schedule) and any optimizer
    options (`weight_decay=0.01`, `clipnorm=1.0`, ...) as keywords.
    """


@hookspec
def register_schedules(register):
    """Register learning-rate schedules.

    Called the first time `keraslm.registry.schedules` is used after the set
    of plugins changed. The factory returns a
    `keras.optimizers.schedules.LearningRateSchedule` from keywords such as
    `learning_rate`, `decay_steps` and `warmup_steps`.
    """


@hookspec
def register_exporters(register):
    """Register model exporters (`keraslm export --format NAME`).

    Called the first time `keraslm.registry.exporters` is used after the set
    of plugins changed. The factory is called as
    `factory(model=model, path=path, inputs=inputs, atol=atol, **options)`
    (`inputs`: a list of input batches of several shapes), writes the exported
    artifact at `path` and returns a `keraslm.exporting.ExportResult`, normally
    by running the file in its own runtime and comparing it with the Keras
    model through `keraslm.exporting.finish` / `check_parity`. Metadata conventionally includes
    `file_extension` (for example `".onnx"`), `runtime` (an import string of a
    function that loads the file and runs it on input batches; `keraslm
    export` scores a quantized file's task metrics with it) and `choices`
    (allowed values of options, `{"quantize": ("none", "float16", ...)}`,
    checked by `keraslm export` before the model is read), `tasks` (the
    task names whose runs it exports, `("lm",)`; absent: every task;
    `keraslm export` and `keraslm quickstart` refuse or skip the others) and
    `part_of` (the name of another exporter whose artifact holds this one's,
    as `tflite-generation`'s file is inside a `litertlm` bundle; `keraslm
    quickstart` exports the bundle and names the part).
    """


@hookspec
def register_tokenizers(register):
    """Register tokenizers.

    Called the first time `keraslm.registry.tokenizers` is used after the set
    of plugins changed. The factory builds a tokenizer from keywords (for
    example a vocabulary or `sequence_length`); a tokenizer maps strings to
    integer ids (`tokenize`) and back (`detokenize`).
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics.

    Called the first time `keraslm.registry.metrics` is used after the set of
    plugins changed. The factory returns a `keras.metrics.Metric` from keyword
    arguments (for example `from_logits=True`).
    """


@hookspec
def register_commands(register):
    """Register `keraslm` sub-commands.

    Called the first time `keraslm.registry.commands` is used after the set
    of plugins changed (each time the `keraslm` command line starts). The
    factory is the command's handler: `handler(args)` runs the command with
    the parsed `argparse.Namespace` and returns an exit status (None means
    0). `description` is the line `keraslm --help` shows, and the metadata
    `configure=function` adds the command's arguments to its
    `argparse.ArgumentParser`. Both may be import strings
    (`"package.module:function"`), so a command's module is imported only
    when it runs. A command name used by two plugins is an error naming
    both.

    ```python
    @keraslm.hookimpl
    def register_commands(register):
        register("hello", lambda args: print("hello", args.name),
                 description="Say hello.",
                 configure=lambda parser: parser.add_argument("name"))
    ```
    """
