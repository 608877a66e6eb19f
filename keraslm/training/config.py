"""The configuration of a training run: one dataclass, one comment per field.

The same fields are `keraslm train` options (`--batch-size` for
`batch_size`), keyword arguments of `keraslm.train(...)`, and keys of a
`--config run.toml` file (`[model_options]` / `[head_options]` /
`[tokenizer_options]` / `[optimizer_options]` tables for the dicts). The
resolved configuration is written to `RUN_DIR/config.json`.
"""

import dataclasses
import json
import os

TASKS = ("lm", "mlm", "classify", "tag", "qa", "translate")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = (None, "mirrored")
PATH_FIELDS = ("train", "valid", "test", "output_dir", "init_from")

DEFAULT_MODEL = {
    "lm": "transformer_lm",
    "mlm": "transformer_encoder",
    "classify": "transformer_encoder",
    "tag": "transformer_encoder",
    "qa": "transformer_encoder",
    "translate": "seq2seq_transformer",
}


@dataclasses.dataclass
class TrainConfig:
    task: str = "lm"                    # lm | mlm | classify | tag | qa | translate
    train: str = ""                     # training data file
    valid: str | None = None            # validation file; None: split `train`
    test: str | None = None             # optional test file, evaluated at the end
    format: str | None = None           # txt | csv | tsv | jsonl | conll; None: from the extension
    text_column: str = "text"           # table column holding the text
    label_column: str = "label"         # table column holding the label
    split: str = "line"                 # .txt documents: "line" or "block" (blank-line separated)
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
    weight_decay: float = 0.01          # adamw only
    global_clipnorm: float | None = 1.0  # clip gradients to this global norm; None: off
    ema_momentum: float | None = None   # e.g. 0.999: validate, checkpoint and keep a moving average of the weights; None: off
    schedule: str = "warmup_cosine"     # a name in keraslm.registry.schedules
    warmup_steps: int | None = None     # None: 5% of the steps (warmup schedules)
    epochs: float = 1.0                 # passes over the training data (ignored if `steps` is set)
    steps: int | None = None            # total optimizer steps
    batch_size: int = 32
    random_offsets: bool = True         # lm: move the window boundaries every epoch (--no-random-offsets: fixed windows)
    eval_stride: int | None = None      # lm: evaluate windows every N tokens, the rest context; None: sequence_length
    precision: str = "float32"          # float32 | mixed_bfloat16 | mixed_float16
    xla: bool | str = False             # "off"/False | "on"/True: XLA compiles the whole step | "fusible": XLA fuses the element-wise ops, matmuls stay oneDNN (fastest on CPU)
    strategy: str | None = None         # None | mirrored (tf.distribute, all local devices)
    seed: int = 0                       # data order, masking, initialization
    checkpoint_every: int = 200         # steps between checkpoints, validation and progress lines
    output_dir: str = ""                # the run directory; "" makes runs/<task>-<time>
    init_from: str | None = None        # a run directory whose backbone and tokenizer start this run
    max_answer_length: int = 30         # qa: longest answer span in tokens
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

        if self.task not in TASKS:
            from keraslm.registry import unknown_name_message

            raise ValueError(unknown_name_message("task", self.task, TASKS))
        if not self.train:
            raise ValueError("`train` (the training data file) is required. "
                             "Received: train=''")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"one of {PRECISIONS}")
        from keraslm.training.xla import xla_mode

        xla_mode(self.xla)
        if self.strategy == "multi_worker":
            raise ValueError(
                "`strategy='multi_worker'` is not supported: Keras 3's model.fit "
                "fails under tf.distribute.MultiWorkerMirroredStrategy "
                "(keras-team/keras#20585; measured here with TF 2.21 / Keras 3.15). "
                "Use 'mirrored' for the devices of one machine.")
        if self.strategy not in STRATEGIES:
            raise bad("strategy", f"one of {STRATEGIES}")
        if self.split not in ("line", "block"):
            raise bad("split", "'line' or 'block'")
        for field in ("model_options", "head_options", "tokenizer_options",
                      "optimizer_options"):
            if not isinstance(getattr(self, field), dict):
                raise bad(field, "a dict (a TOML table; KEY=VALUE flags on the command line)")
        for field in ("batch_size", "sequence_length", "checkpoint_every",
                      "vocabulary_size", "max_answer_length"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(field, "a positive integer")
        if self.eval_stride is not None and (
                not isinstance(self.eval_stride, int) or isinstance(self.eval_stride, bool)
                or not 1 <= self.eval_stride <= self.sequence_length):
            raise bad("eval_stride", f"an integer in [1, sequence_length={self.sequence_length}] "
                                     "or None")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise bad("steps", "a positive integer or None")
        if not self.epochs > 0:
            raise bad("epochs", "positive")
        if not self.learning_rate > 0:
            raise bad("learning_rate", "positive")
        if not 0 < self.validation_fraction < 1:
            raise bad("validation_fraction", "in (0, 1)")
        if self.ema_momentum is not None and (
                isinstance(self.ema_momentum, bool)
                or not isinstance(self.ema_momentum, (int, float))
                or not 0 < self.ema_momentum < 1):
            raise bad("ema_momentum", "a number in (0, 1), such as 0.999, or None")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "in [0, 1)")
        for field in ("train", "valid", "test"):
            path = getattr(self, field)
            if path and not os.path.isfile(path):
                raise FileNotFoundError(f"`{field}` file not found: {path}")
        if self.init_from and not os.path.isfile(
                os.path.join(self.init_from, "config.json")):
            raise FileNotFoundError(
                f"`init_from` must be a keraslm run directory (with config.json). "
                f"Received: init_from={self.init_from!r}")
        return self

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODEL[self.task]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source="configuration") -> "TrainConfig":
        """Builds a config, rejecting unknown keys with a suggestion."""
        from keraslm.registry import suggest

        fields = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in fields:
                closest = suggest(key, fields)
                hint = f" Did you mean '{closest}'?" if closest else ""
                raise ValueError(f"Unknown option '{key}' in {source}.{hint}")
        return cls(**values)

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
        path = os.path.join(run_dir, "config.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{run_dir} is not a keraslm run directory: no config.json there.")
        with open(path) as handle:
            return cls.from_dict(json.load(handle)["config"], source=path)
