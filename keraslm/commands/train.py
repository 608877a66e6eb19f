"""`keraslm train`: train a model for a task and write a run directory.

Every `TrainConfig` field is a flag (`--batch-size` for `batch_size`), and
so is every option of every installed task (`--eval-stride` of `lm`,
`--max-answer-length` of `qa`, ...); an option of another task than the one
chosen is an error naming its task. `--config run.toml` reads the same
options from a file (flags override it).

```bash
keraslm train --task lm --train train.txt --tokenizer character --steps 2000 -o runs/lm
keraslm train --config run.toml
keraslm train --resume runs/lm
keraslm train --task classify --train reviews.csv --folds 5 --epochs 3 -o runs/cv
```
"""

import argparse
import dataclasses
import json

# Builder options that `keraslm train` accepts as flags; they go to
# TrainConfig.model_options.
MODEL_FLAGS = {
    "num_layers": int, "num_heads": int, "hidden_dim": int,
    "intermediate_dim": int, "max_sequence_length": int, "dropout": float,
    "attention_dropout": float, "units": int, "ngram_buckets": int, "ngram_order": int,
}
SHORT = {"output_dir": ["-o", "--output-dir"]}
NOT_FLAGS = ("model_options", "head_options", "tokenizer_options", "optimizer_options",
             "task_options", "verbose")
TASK_OPTION_PREFIX = "task_option__"


def _add_field(parser, field, comment, dest, flags):
    from keraslm._options import field_type

    help_text = comment.replace("%", "%%")
    kind = field_type(field)
    default = field.default
    if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    if kind is bool:
        parser.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction,
                            default=None, help=f"{help_text} (default: {default})")
    else:
        suffix = "" if default is dataclasses.MISSING else f" (default: {default})"
        parser.add_argument(*flags, dest=dest, type=kind, default=None,
                            metavar=field.name.upper(), help=help_text + suffix)


def _task_options():
    """`[(task_name, field, comment)]` of every installed task's options."""
    from keraslm import registry
    from keraslm._options import field_comments

    rows = []
    for component in sorted(registry.tasks, key=lambda c: c.name):
        task = component.load()
        comments = field_comments(task.Options)
        for field in dataclasses.fields(task.Options):
            rows.append((component.name, field, comments.get(field.name, "")))
    return rows


def configure(parser):
    from keraslm._options import field_comments
    from keraslm.training.config import TrainConfig

    comments = field_comments(TrainConfig)
    parser.add_argument("--config", metavar="TOML",
                        help="read options from a TOML file (flags override it)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last checkpoint")
    parser.add_argument("--folds", type=int, default=None, metavar="K",
                        help="classify: stratified K-fold cross-validation, K runs in "
                             "-o DIR/fold_k, mean and std in DIR/cross_validation.json "
                             "(the same command again continues it)")
    for field in dataclasses.fields(TrainConfig):
        if field.name in NOT_FLAGS:
            continue
        if field.name == "xla":
            parser.add_argument("--xla", dest="xla", nargs="?", const=True,
                                default=None, type=_xla_flag, metavar="MODE",
                                help="XLA for the train step: --xla or --xla on (the "
                                "whole step), --xla fusible (element-wise ops in XLA, "
                                "matmuls on oneDNN: fastest on CPU), --xla off "
                                "(default: off)")
            parser.add_argument("--no-xla", dest="xla", action="store_const",
                                const=False, help="same as --xla off")
            continue
        flags = SHORT.get(field.name, [f"--{field.name.replace('_', '-')}"])
        _add_field(parser, field, comments.get(field.name, ""), field.name, flags)
    for name, kind in MODEL_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=f"model_{name}",
                            type=kind, default=None, help="model builder option")
    # One flag per option name; an option several tasks share (`split` of
    # lm and mlm) is listed once, under all the tasks that have it.
    options = {}
    for task, field, comment in _task_options():
        options.setdefault(field.name, (field, comment, []))[2].append(task)
    groups = {}
    for name, (field, comment, tasks) in options.items():
        title = (f"options of task {tasks[0]}" if len(tasks) == 1
                 else f"options of tasks {', '.join(tasks)}")
        group = groups.get(title) or parser.add_argument_group(title)
        groups[title] = group
        _add_field(group, field, comment, TASK_OPTION_PREFIX + name,
                   [f"--{name.replace('_', '-')}"])
    parser.add_argument("--head-option", action="append", default=[],
                        metavar="KEY=VALUE", help="task-head option, e.g. pooling=mean")
    parser.add_argument("--optimizer-option", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="optimizer option, e.g. decay_embeddings=true or beta_2=0.95")
    parser.add_argument("--tokenizer-option", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="tokenizer training option, e.g. model_type=bpe")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    group = parser.add_argument_group(
        "--strategy data_parallel (KERAS_BACKEND=jax; the same as Keras' variables "
        "KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES, _PROCESS_ID)")
    group.add_argument("--coordinator", metavar="HOST:PORT",
                       help="process 0's address, the same for every process")
    group.add_argument("--num-processes", type=int, metavar="N",
                       help="the number of processes (one per machine)")
    group.add_argument("--process-id", type=int, metavar="I",
                       help="this process's id, 0 to N-1 (0 writes the run directory)")


def _xla_flag(text):
    from keraslm.training.xla import xla_mode

    try:
        return {"on": True, "off": False}.get(xla_mode(text), "fusible")
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--xla takes on, off or fusible. Received: {text!r}") from error


def _parse_value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(flag, items):
    """`["a=1", "b=x"]` -> `{"a": 1, "b": "x"}` (values parsed as JSON if they can be)."""
    values = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"{flag} takes KEY=VALUE. Received: {item!r}")
        key, value = item.split("=", 1)
        values[key] = _parse_value(value)
    return values


def config_from_args(args):
    """The `TrainConfig` described by parsed `keraslm train` arguments."""
    from keraslm.training.config import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
              if getattr(args, f.name, None) is not None}
    # Task options go in at the top level: TrainConfig.from_dict routes them to
    # the chosen task (and refuses another task's options, naming it).
    values.update({key[len(TASK_OPTION_PREFIX):]: value for key, value in vars(args).items()
                   if key.startswith(TASK_OPTION_PREFIX) and value is not None})
    model_options = {name: getattr(args, f"model_{name}") for name in MODEL_FLAGS
                     if getattr(args, f"model_{name}") is not None}
    head_options = key_values("--head-option", args.head_option)
    tokenizer_options = key_values("--tokenizer-option", args.tokenizer_option)
    optimizer_options = key_values("--optimizer-option", args.optimizer_option)
    if args.config:
        config = TrainConfig.from_toml(args.config, **values)
    else:
        config = TrainConfig.from_dict(values, source="the command line")
    config.model_options = {**config.model_options, **model_options}
    config.head_options = {**config.head_options, **head_options}
    config.tokenizer_options = {**config.tokenizer_options, **tokenizer_options}
    config.optimizer_options = {**config.optimizer_options, **optimizer_options}
    config.verbose = not args.quiet
    return config


def run(args):
    import os

    import keraslm

    for flag, variable in (("coordinator", "KERAS_DISTRIBUTION_JOB_ADDRESSES"),
                           ("num_processes", "KERAS_DISTRIBUTION_NUM_PROCESSES"),
                           ("process_id", "KERAS_DISTRIBUTION_PROCESS_ID")):
        if getattr(args, flag, None) is not None:
            os.environ[variable] = str(getattr(args, flag))

    if args.folds is not None:
        from keraslm.training.cross_validation import cross_validate

        if args.resume:
            raise ValueError("--folds continues an interrupted cross-validation when the "
                             "same command runs again; drop --resume.")
        summary = cross_validate(config_from_args(args), folds=args.folds)
        print(json.dumps({"mean": summary["mean"], "std": summary["std"]}, indent=2,
                         default=str))
        return 0
    if args.resume:
        given = [f for f in ("train", "task", "steps", "epochs")
                 if getattr(args, f, None) is not None]
        if given:
            raise ValueError("--resume continues a run with its saved configuration; "
                             f"drop {', '.join('--' + g for g in given)}.")
        result = keraslm.train(resume=args.resume, verbose=not args.quiet)
    else:
        result = keraslm.train(config_from_args(args))
    if result.metrics:  # not a worker other than the chief
        print(json.dumps(result.metrics.get("final", {}), indent=2, default=str))
    return 0
