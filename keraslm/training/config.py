"""The configuration of a training run: one dataclass, one comment per field.

The same fields are `keraslm train` options (`--batch-size` for
`batch_size`), keyword arguments of `keraslm.train(...)`, and keys of a
`--config run.toml` file (`[model_options]` / `[head_options]` /
`[tokenizer_options]` / `[optimizer_options]` / `[task_options]` tables for
the dicts). The chosen task's own options (its `Options` dataclass, such as
`eval_stride` for `lm`) may also be given as top-level keys or keyword
arguments; they are collected into `task_options`. The resolved
configuration is written to `RUN_DIR/config.json`.
"""

import dataclasses
import os

from keraslm._options import check_value
from keraslm.tasks.base import task_class

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = (None, "mirrored", "multi_worker", "data_parallel")
# The Keras backend each strategy runs on.
STRATEGY_BACKENDS = {"mirrored": "tensorflow", "multi_worker": "tensorflow",
                     "data_parallel": "jax"}
PATH_FIELDS = ("train", "valid", "test", "output_dir", "init_from", "token_cache")
DICT_FIELDS = ("model_options", "head_options", "tokenizer_options",
               "optimizer_options", "task_options")
# Options that were TrainConfig fields before tasks owned them: an old run's
# config.json gives them at the top level for any task.
FORMER_FIELDS = ("split", "random_offsets", "eval_stride", "max_answer_length")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


_TABLE = "a dict (a TOML table; KEY=VALUE flags on the command line)"
# field: (accepts(value), what is expected), checked type and range at once.
RANGES = {
    **{field: (lambda v: isinstance(v, dict), _TABLE) for field in DICT_FIELDS},
    **{field: (lambda v: _integer(v) and v >= 1, "a positive integer")
       for field in ("batch_size", "sequence_length", "checkpoint_every",
                     "vocabulary_size")},
    "steps": (lambda v: v is None or (_integer(v) and v >= 1),
              "a positive integer or None"),
    "epochs": (lambda v: _number(v) and v > 0, "a positive number"),
    "learning_rate": (lambda v: _number(v) and v > 0, "a positive number"),
    "validation_fraction": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1)"),
    "ema_momentum": (lambda v: v is None or (_number(v) and 0 < v < 1),
                     "a number in (0, 1), such as 0.999, or None"),
    "label_smoothing": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: v is None or (_number(v) and v >= 0),
                     "a number >= 0 or None"),
    "global_clipnorm": (lambda v: v is None or (_number(v) and v >= 0),
                        "a positive number, or 0 or None for no clipping"),
    "warmup_steps": (lambda v: v is None or (_integer(v) and v >= 0),
                     "an integer >= 0 or None"),
    "early_stopping": (lambda v: v is None or (_integer(v) and v >= 0),
                       "an integer >= 0 (validation passes; 0 is off) or None"),
    "class_weight": (lambda v: v in (None, "none", "balanced"),
                     "'balanced', or 'none' or None (off)"),
    "time_budget": (lambda v: v is None or _duration(v) is not None,
                    "a positive duration such as 90s, 10m or 1.5h (a number alone "
                    "is seconds), or None"),
}


def _duration(value):
    from keraslm.training.budget import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        return None


@dataclasses.dataclass
class TrainConfig:
    task: str = "lm"                    # a name in keraslm.registry.tasks: lm | mlm | classify | tag | translate | plugins' (qa, ner, ...)
    train: str = ""                     # training data: a file, a directory or a glob ('shards/*.txt.gz'); .gz files are decompressed
    valid: str | None = None            # validation file; None: split `train`
    test: str | None = None             # optional test file, evaluated at the end
    format: str | None = None           # txt | csv | tsv | jsonl | conll; None: from the extension
    text_column: str = "text"           # table column holding the text
    label_column: str = "label"         # table column holding the label
    validation_fraction: float = 0.1    # share of `train` held out when `valid` is None
    model: str | None = None            # builder in keraslm.models.BUILDERS; None: the task's default
    preset: str | None = "tiny"         # tiny | small | base, or None (give every size yourself)
    model_options: dict = dataclasses.field(default_factory=dict)  # builder overrides
    head_options: dict = dataclasses.field(default_factory=dict)   # task-head options (pooling, dropout)
    tokenizer: str = "wordpiece"        # a name in keraslm.registry.tokenizers
    vocabulary_size: int = 8000         # tokenizer size (ignored by byte; an upper bound for character)
    tokenizer_options: dict = dataclasses.field(default_factory=dict)  # tokenizer training options (sentencepiece: model_type, normalization, ...)
    lowercase: bool = False             # lowercase before tokenizing
    sequence_length: int = 128          # tokens per training sequence (source and target for translate)
    loss: str = "auto"                  # a name in keraslm.registry.losses; auto: the task's
    label_smoothing: float = 0.0        # for the cross-entropy losses
    optimizer: str = "adamw"            # a name in keraslm.registry.optimizers
    optimizer_options: dict = dataclasses.field(default_factory=dict)  # more optimizer arguments (adamw: decay_embeddings, beta_2, ...)
    learning_rate: float = 1e-3         # peak learning rate
    weight_decay: float | None = None   # optimizers that take it (adamw); None: the optimizer's default (adamw: 0.01)
    global_clipnorm: float | None = 1.0  # clip gradients to this global norm; 0 or None: off
    ema_momentum: float | None = None   # e.g. 0.999: validate, checkpoint and keep a moving average of the weights; None: off
    schedule: str = "warmup_cosine"     # a name in keraslm.registry.schedules
    warmup_steps: int | None = None     # schedules that warm up; None: 5% of the steps
    epochs: float = 1.0                 # passes over the training data (ignored if `steps` or `time_budget` is set)
    steps: int | None = None            # total optimizer steps
    time_budget: str | float | None = None  # e.g. 90s, 10m, 1.5h: the whole run (data, training, validation, evaluation) ends within it; the steps are measured to fit (not with `steps`)
    batch_size: int = 32
    precision: str = "float32"          # float32 | mixed_bfloat16 | mixed_float16
    xla: bool | str = False             # "off"/False | "on"/True: XLA compiles the whole step | "fusible": XLA fuses the element-wise ops, matmuls stay oneDNN (fastest on CPU)
    strategy: str | None = None         # None | mirrored (tf.distribute, all local devices) | multi_worker (processes/machines from TF_CONFIG; keraslm launch) | data_parallel (KERAS_BACKEND=jax: keras.distribution over processes and their devices)
    seed: int = 0                       # data order, masking, initialization
    checkpoint_every: int = 200         # steps between checkpoints, validation and progress lines
    output_dir: str = ""                # the run directory; "" makes runs/<task>-<time>
    init_from: str | None = None        # a run directory whose backbone and tokenizer start this run
    token_cache: str | None = None      # lm on a directory/glob/.gz corpus: where its token ids and trained tokenizer are cached (a shared directory reuses them across runs); None: RUN_DIR/token_cache
    task_options: dict = dataclasses.field(default_factory=dict)  # the task's own options (keraslm train --help lists them per task)
    auto: bool = True                   # with no `steps`/`epochs`: a default time budget and data-driven choices for what is not given (keraslm.training.auto; printed, in config.json); --no-auto: the fixed defaults above
    early_stopping: int | None = None   # stop after this many validation passes without a lower validation loss and keep the best checkpoint as the final model; 0 or None: off
    class_weight: str | None = None     # classify: "balanced" weights each class's loss by n / (classes * count); "none" or None: off
    verbose: bool = True                # progress lines on stdout

    def __post_init__(self):
        # pathlib paths are welcome; config.json stores them as strings.
        for field in PATH_FIELDS:
            value = getattr(self, field)
            if isinstance(value, os.PathLike):
                setattr(self, field, os.fspath(value))

    def validate(self):
        """Raises ValueError naming the first bad field, its value and what is expected."""
        def bad(field, expected):
            return ValueError(f"`{field}` must be {expected}. "
                              f"Received: {field}={getattr(self, field)!r}")

        # A field with a range is refused with the range, whatever its type;
        # the others by their annotation.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in RANGES:
                accepts, expected = RANGES[field.name]
                if not accepts(value):
                    raise bad(field.name, expected)
            elif field.name != "xla":
                check_value(field, value, "the configuration")
        if self.time_budget is not None:
            if self.steps is not None:
                raise ValueError(
                    f"`time_budget` chooses the number of steps; give `steps` or "
                    f"`time_budget`, not both. Received: steps={self.steps!r}, "
                    f"time_budget={self.time_budget!r}")
            self.time_budget = _duration(self.time_budget)  # seconds from here on
        task = task_class(self.task)  # an unknown task: the installed ones, a suggestion
        if not self.train:
            raise ValueError("`train` (the training data file) is required. "
                             "Received: train=''")
        if self.model is not None:
            from keraslm._names import unknown_name_message
            from keraslm.models import BUILDERS

            if self.model not in BUILDERS:
                raise ValueError(unknown_name_message("model", self.model, sorted(BUILDERS)))
        self._check_model_options()
        if self.precision not in PRECISIONS:
            raise bad("precision", f"one of {PRECISIONS}")
        from keraslm.training.xla import xla_mode

        xla_mode(self.xla)
        if self.strategy == "multi_worker" and xla_mode(self.xla) == "on":
            raise ValueError(
                "`xla` 'on' is not available with `strategy='multi_worker'` (its own "
                "training loop runs without jit_compile). Received: xla="
                f"{self.xla!r}, strategy='multi_worker'. Use xla 'off' or 'fusible'.")
        if self.strategy not in STRATEGIES:
            raise bad("strategy", f"one of {STRATEGIES}")
        import keras

        backend = STRATEGY_BACKENDS.get(self.strategy)
        if backend and keras.backend.backend() != backend:
            raise ValueError(
                f"`strategy='{self.strategy}'` runs on the {backend} backend. Received: "
                f"strategy={self.strategy!r} with KERAS_BACKEND={keras.backend.backend()!r}"
                + ("; on JAX use 'data_parallel'." if backend == "tensorflow" else
                   "; set KERAS_BACKEND=jax, or use 'multi_worker' on TensorFlow."))
        from keraslm.data.sources import expand_paths, is_multi_file

        for field in ("train", "valid", "test"):
            path = getattr(self, field)
            if path and not is_multi_file(path) and not os.path.lexists(path):
                raise FileNotFoundError(f"`{field}` file not found: {path}")
            if path and is_multi_file(path):
                expand_paths(path)  # a glob or directory with no usable file
        if self.init_from:
            self._check_init_from(task)
        instance = task(self)
        self._check_component_options(instance)
        instance.check()
        return self

    def _check_component_options(self, task):
        """Every key of `head_options`, `tokenizer_options` and
        `optimizer_options` is an argument the chosen component takes."""
        from keraslm import registry
        from keraslm.tasks.base import Task

        head = registry.task_heads.get(task.head)
        # A task that overrides head_options gives the head its label count.
        labelled = type(task).head_options is not Task.head_options
        _check_keys("head_options", self.head_options, head.accepts(),
                    f"head '{head.name}' (plugin '{head.plugin}')",
                    supplied=("backbone", *(["num_classes"] if labelled else [])))
        if not self.init_from:  # the tokenizer comes from the earlier run
            tokenizer = registry.tokenizers.get(self.tokenizer)
            trainer = getattr(tokenizer.load(), "train", None)
            if trainer is not None:
                _check_keys("tokenizer_options", self.tokenizer_options,
                            registry._accepted_keywords(trainer),
                            f"tokenizer '{tokenizer.name}' (its `train`)",
                            supplied=("texts", "vocabulary_size"))
        optimizer = registry.optimizers.get(self.optimizer)
        _check_keys("optimizer_options", self.optimizer_options, optimizer.accepts(),
                    f"optimizer '{optimizer.name}' (plugin '{optimizer.plugin}')",
                    supplied=("learning_rate",))

    def _check_model_options(self):
        """Every `model_options` key is an option of the builder, and an
        explicit `max_sequence_length` holds `sequence_length` tokens."""
        from keraslm.models import option_names

        if self.init_from:
            return  # the backbone comes from the earlier run
        _check_keys("model_options", self.model_options, option_names(self.model_name),
                    f"model '{self.model_name}'")
        longest = self.model_options.get("max_sequence_length")
        if (isinstance(longest, int) and self.model_name != "lstm_lm"
                and longest < self.sequence_length):
            raise ValueError(
                f"`model_options['max_sequence_length']` must be at least "
                f"`sequence_length`={self.sequence_length} (the model has a position "
                f"for each token). Received: max_sequence_length={longest}.")

    def _check_init_from(self, task):
        from keraslm.training.run_directory import RunDirectory

        source = RunDirectory(self.init_from)
        source.require_file("config", what="`init_from` must be a keraslm run directory")
        source.require_file("final_model",
                            what="`init_from` must be a finished run (with model.keras)")
        earlier = source.info()["config"].get("task", "lm")
        if earlier not in task.init_from_tasks:
            claims = ", ".join(task.init_from_tasks) or "none"
            raise ValueError(
                f"A '{self.task}' run cannot start from a '{earlier}' run. Received: "
                f"init_from={self.init_from!r} (task {earlier!r}). Task '{self.task}' "
                f"starts from runs of: {claims}.")

    @property
    def task_class(self):
        """The registered `Task` subclass of `task`."""
        return task_class(self.task)

    @property
    def model_name(self) -> str:
        return self.model or self.task_class.default_model

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source="configuration",
                  former_fields="keep") -> "TrainConfig":
        """Builds a config, rejecting unknown keys with a suggestion.

        Keys that are options of the chosen task go into `task_options`. An
        option of another installed task is refused with the task it belongs
        to. `former_fields="drop"` (old run directories) drops the options
        that used to be top-level fields when the task does not have them.
        """
        from keraslm._names import suggest

        values = dict(values)
        fields = {f.name for f in dataclasses.fields(cls)}
        extra = {key: values.pop(key) for key in list(values) if key not in fields}
        if extra:
            task = task_class(values.get("task", cls.task))
            own = set(task.option_names())
            task_options = dict(values.get("task_options") or {})
            for key, value in extra.items():
                if key in own:
                    task_options[key] = value
                    continue
                if key in FORMER_FIELDS and former_fields == "drop":
                    continue
                owners = _tasks_with_option(key)
                if owners:
                    raise ValueError(
                        f"Option '{key}' in {source} belongs to task(s) "
                        f"{', '.join(owners)}, not to task '{task.name}'. "
                        f"Task '{task.name}' options: "
                        f"{', '.join(sorted(own)) or 'none'}.")
                closest = suggest(key, [*fields, *own])
                hint = f" Did you mean '{closest}'?" if closest else ""
                raise ValueError(f"Unknown option '{key}' in {source}.{hint}")
            values["task_options"] = task_options
        config = cls(**values)
        # What was given, for the automatic defaults (keraslm.training.auto).
        config._given = frozenset(values) | frozenset(extra)
        return config

    @classmethod
    def from_toml(cls, path, **overrides) -> "TrainConfig":
        """Reads a `run.toml`; `overrides` (not None) win over the file."""
        import tomllib

        with open(path, "rb") as handle:
            try:
                values = tomllib.load(handle)
            except tomllib.TOMLDecodeError as error:
                raise ValueError(f"{path} is not valid TOML: {error}") from error
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, source=str(path))

    @classmethod
    def from_run(cls, run_dir) -> "TrainConfig":
        """The configuration a run directory was trained with."""
        from keraslm.training.run_directory import RunDirectory

        run = RunDirectory(run_dir)
        return cls.from_dict(run.info()["config"], source=run.config_file,
                             former_fields="drop")


def _tasks_with_option(key):
    """The installed tasks that have an option named `key`."""
    from keraslm import registry

    owners = []
    for component in registry.tasks:
        try:
            if key in component.load().option_names():
                owners.append(component.name)
        except Exception:  # a task that fails to load is reported elsewhere
            continue
    return sorted(owners)


def _check_keys(field, options, accepted, component, supplied=()):
    """A `field` key `accepted` does not hold (or one the trainer sets
    itself) is a ValueError with the closest name and the accepted ones."""
    from keraslm._names import suggest

    if accepted is None:
        return  # the component takes any keyword
    supplied = set(supplied)
    known = sorted(set(accepted) - supplied)
    for key in options:
        if key in known:
            continue
        if key in supplied:
            raise ValueError(
                f"`{field}` sets '{key}', which keraslm sets itself for the "
                f"{component}. Received: {field}={options!r}. Remove '{key}'.")
        closest = suggest(key, known)
        hint = f" Did you mean '{closest}'?" if closest else ""
        raise ValueError(
            f"Unknown option '{key}' in `{field}` of {component}.{hint} Received: "
            f"{field}={options!r}. Options: {', '.join(known) or '(none)'}.")
