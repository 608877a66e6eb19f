"""Command-line front ends of the workflow: train, evaluate, generate, export, quickstart.

Registered by `keraslm.builtins.commands`; each `configure_*` adds arguments
to an argparse parser and each `run_*` takes the parsed namespace.
"""

import argparse
import dataclasses
import json
import os
import types

# Builder options that `keraslm train` accepts as flags; they go to
# TrainConfig.model_options.
MODEL_FLAGS = {
    "num_layers": int, "num_heads": int, "hidden_dim": int,
    "intermediate_dim": int, "max_sequence_length": int, "dropout": float,
    "attention_dropout": float, "units": int, "ngram_buckets": int, "ngram_order": int,
}
SHORT = {"output_dir": ["-o", "--output-dir"]}


def _flag_type(field):
    annotation = field.type
    if isinstance(annotation, types.UnionType):
        annotation = next(a for a in annotation.__args__ if a is not type(None))
    return annotation


def _field_comments():
    """`field -> comment` from the `# ...` beside each TrainConfig field."""
    import inspect
    import re

    from keraslm.training.config import TrainConfig

    comments = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        match = re.match(r"\s+(\w+): [^#]*#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).replace("%", "%%")
    return comments


def configure_train(parser):
    from keraslm.training.config import TrainConfig

    comments = _field_comments()

    parser.add_argument("--config", metavar="TOML",
                        help="read options from a TOML file (flags override it)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last checkpoint")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("model_options", "head_options", "tokenizer_options",
                          "optimizer_options", "verbose"):
            continue
        flags = SHORT.get(field.name, [f"--{field.name.replace('_', '-')}"])
        kind = _flag_type(field)
        if field.name == "xla":
            parser.add_argument("--xla", dest="xla", nargs="?", const=True,
                                default=None, type=_xla_flag, metavar="MODE",
                                help="XLA for the train step: --xla or --xla on (the "
                                "whole step), --xla fusible (element-wise ops in XLA, "
                                "matmuls on oneDNN: fastest on CPU), --xla off "
                                "(default: off)")
            parser.add_argument("--no-xla", dest="xla", action="store_const",
                                const=False, help="same as --xla off")
        elif kind is bool:
            parser.add_argument(*flags, dest=field.name,
                                action=argparse.BooleanOptionalAction,
                                default=None, help=(comments.get(field.name) or "")
                                + f" (default: {field.default})")
        else:
            default = "" if field.default is dataclasses.MISSING else \
                f" (default: {field.default})"
            parser.add_argument(*flags, dest=field.name, type=kind, default=None,
                                metavar=field.name.upper(),
                                help=(comments.get(field.name) or "") + default)
    for name, kind in MODEL_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=f"model_{name}",
                            type=kind, default=None, help="model builder option")
    parser.add_argument("--head-option", action="append", default=[],
                        metavar="KEY=VALUE", help="task-head option, e.g. pooling=mean")
    parser.add_argument("--optimizer-option", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="optimizer option, e.g. decay_embeddings=true or beta_2=0.95")
    parser.add_argument("--tokenizer-option", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="tokenizer training option, e.g. model_type=bpe")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


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


def _key_values(flag, items):
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
    model_options = {name: getattr(args, f"model_{name}") for name in MODEL_FLAGS
                     if getattr(args, f"model_{name}") is not None}
    head_options = _key_values("--head-option", args.head_option)
    tokenizer_options = _key_values("--tokenizer-option", args.tokenizer_option)
    optimizer_options = _key_values("--optimizer-option", args.optimizer_option)
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


def run_train(args):
    import keraslm

    if args.resume:
        given = [f for f in ("train", "task", "steps", "epochs")
                 if getattr(args, f, None) is not None]
        if given:
            raise ValueError("--resume continues a run with its saved configuration; "
                             f"drop {', '.join('--' + g for g in given)}.")
        result = keraslm.train(resume=args.resume, verbose=not args.quiet)
    else:
        result = keraslm.train(config_from_args(args))
    print(json.dumps(result.metrics.get("final", {}), indent=2, default=str))
    return 0


def _load_run(run_dir, checkpoint):
    import keraslm
    from keraslm import text
    from keraslm.training.config import TrainConfig

    config = TrainConfig.from_run(run_dir)
    paths = {"final": "model.keras", "best": "checkpoints/best.keras",
             "last": "checkpoints/last.keras"}
    if checkpoint not in paths:
        raise ValueError(f"--checkpoint must be one of {sorted(paths)}. "
                         f"Received: {checkpoint!r}")
    path = os.path.join(run_dir, paths[checkpoint])
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist (has the run finished?).")
    model = keraslm.load_model(path)
    tokenizer = text.load_tokenizer(os.path.join(run_dir, "tokenizer"))
    return config, model, tokenizer


def configure_run_dir(parser):
    parser.add_argument("run_dir", help="a keraslm run directory")
    parser.add_argument("--checkpoint", default="final",
                        help="final (model.keras), best or last")


def configure_evaluate(parser):
    configure_run_dir(parser)
    parser.add_argument("--data", help="file to evaluate on (default: the run's "
                                       "validation file)")
    parser.add_argument("--eval-stride", type=int, default=None, metavar="N",
                        help="lm runs: score in windows every N tokens, the rest "
                             "context (default: the run's eval_stride)")


def run_evaluate(args):
    from keraslm.training.tasks import TASKS

    config, model, tokenizer = _load_run(args.run_dir, args.checkpoint)
    if args.eval_stride is not None:
        if config.task != "lm":
            raise ValueError(f"--eval-stride applies to language-model runs (task lm). "
                             f"Received a run of task {config.task!r}.")
        if not 1 <= args.eval_stride <= config.sequence_length:
            raise ValueError(f"--eval-stride must be an integer in [1, sequence_length="
                             f"{config.sequence_length}]. Received: {args.eval_stride}")
        config = dataclasses.replace(config, eval_stride=args.eval_stride)
    task = TASKS[config.task](config)
    task.load_assets(args.run_dir)
    path = args.data or config.valid
    if not path:
        raise ValueError("This run held out part of its training file for "
                         "validation; pass --data FILE to evaluate on a file.")
    metrics = task.evaluate(model, task.read(path), tokenizer)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def configure_generate(parser):
    configure_run_dir(parser)
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--sampler", default="top_k",
                        help="greedy, top_k, top_p or random")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)


def run_generate(args):
    from keraslm import generation

    config, model, tokenizer = _load_run(args.run_dir, args.checkpoint)
    if config.task != "lm":
        raise ValueError(f"generate needs a language-model run (task lm). "
                         f"Received a run of task {config.task!r}.")
    print(generation.generate(model, tokenizer, args.prompt, args.max_new_tokens,
                              sampler=args.sampler, temperature=args.temperature,
                              top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                              newline_at_eos=config.split == "line"))
    return 0


def real_inputs(config, tokenizer, lengths=((1, 9), (3, 33))):
    """Token-id batches of several shapes cut from the run's own data."""
    import numpy as np

    from keraslm.training.tasks import TASKS

    task = TASKS[config.task](config)
    examples = task.read(config.valid or config.train)
    texts = task.texts(examples)
    ids = [i for text in texts[:2000] for i in tokenizer.encode(text)]
    batches, offset = [], 0
    for batch, length in lengths:
        needed = batch * length
        if offset + needed > len(ids):
            raise ValueError("The run's data is too short to build export checks.")
        batches.append(np.array(ids[offset:offset + needed], "int32").reshape(batch, length))
        offset += needed
    return batches


def configure_export(parser):
    configure_run_dir(parser)
    parser.add_argument("--format", default="saved_model",
                        help="an exporter name (keraslm plugins --all lists them)")
    parser.add_argument("-o", "--output", help="output path (default RUN_DIR/export/...)")
    parser.add_argument("--atol", type=float, default=1e-4)


def run_export(args):
    import keraslm
    from keraslm import registry

    config, model, tokenizer = _load_run(args.run_dir, args.checkpoint)
    exporter = registry.exporters.get(args.format)
    output = args.output or os.path.join(
        args.run_dir, "export", "model" + exporter.metadata.get("file_extension", ""))
    result = keraslm.export(model, output, format=args.format, atol=args.atol,
                            inputs=real_inputs(config, tokenizer))
    print(result.summary())
    return 0
