"""`keraslm export RUN_DIR --format NAME`: export a run's model with a parity check.

The exporter runs the file in its own runtime on inputs of several shapes cut
from the run's own data (the task's `sample_inputs`) and compares the outputs
with Keras. For a quantized file (`--quantize`), the task's metrics are
measured twice on the run's validation data (or test, else training data):
with the Keras model and with the exported file in its runtime, and the
report holds both and their difference (`metrics` in the report). Options an
exporter does not take, or values outside the `choices` it registered
(`choices={"quantize": (...)}` in its metadata), are refused before the
model is read.

```bash
keraslm export runs/lm --format onnx
keraslm export runs/reviews --format saved_model -o out/reviews
keraslm export runs/reviews --format tflite --quantize dynamic_int8 --json
```
"""

import inspect
import json
import os

from keraslm.commands._run_dir import configure_run_dir

# CLI flag -> exporter keyword, passed only when given.
EXPORTER_OPTIONS = {
    "quantize": "--quantize",
    "allow_select_ops": "--allow-select-ops",
    "sequence_length": "--sequence-length",
}


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer. Received: {text!r}")
    return value


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--format", default="saved_model",
                        help="an exporter name (keraslm plugins --all lists them)")
    parser.add_argument("-o", "--output", help="output path (default RUN_DIR/export/...)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output if it exists")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--quantize", default=None,
                        help="tflite: none, float16, dynamic_int8 or int8")
    parser.add_argument("--allow-select-ops", action="store_true", default=None,
                        help="tflite: keep Select-TF (Flex) ops instead of refusing")
    parser.add_argument("--sequence-length", type=_positive_int, default=None,
                        help="tflite: length of a static signature (recurrent models; "
                             "default: the run's sequence_length)")
    parser.add_argument("--eval-examples", type=_positive_int, default=200,
                        help="examples for the metric comparison of a quantized file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def sample_inputs(config, task, tokenizer):
    """The task's parity-check inputs, cut from the run's validation (or
    training) file."""
    return task.sample_inputs(task.read_files(config.valid or config.train), tokenizer)


def exporter_options(exporter, args, config):
    """The exporter keywords given on the command line, checked against the
    exporter's signature (an option it does not take is refused) and the
    `choices` metadata it registered (a value outside them is refused)."""
    parameters = inspect.signature(exporter.load()).parameters
    options = {name: getattr(args, name) for name in EXPORTER_OPTIONS
               if getattr(args, name, None) is not None}
    refused = [EXPORTER_OPTIONS[name] for name in options if name not in parameters]
    if refused:
        accepted = [flag for name, flag in EXPORTER_OPTIONS.items() if name in parameters]
        takes = (f"it takes {', '.join(accepted)}" if accepted else
                 f"it takes none of {', '.join(EXPORTER_OPTIONS.values())}")
        raise ValueError(
            f"The {exporter.name} exporter does not take {', '.join(refused)} ({takes}).")
    for name, allowed in exporter.metadata.get("choices", {}).items():
        if name in options and options[name] not in allowed:
            flag = EXPORTER_OPTIONS.get(name, name)
            raise ValueError(
                f"{flag} must be one of {', '.join(map(str, allowed))} for the "
                f"{exporter.name} exporter. Received: {flag} {options[name]}")
    if "sequence_length" in parameters and "sequence_length" not in options:
        options["sequence_length"] = config.sequence_length
    if options.get("quantize") == "int8" and "representative_inputs" in parameters:
        options["representative_inputs"] = []  # filled from the training data
    return options


class RuntimeModel:
    """An exported file's runtime, called like the Keras model it came from
    (`model(x, training=False)`), also inside a `tf.function` (through
    `tf.numpy_function`), so a task's `evaluate` can score the file."""

    def __init__(self, run, model):
        self.run = run
        self.rank = len(model.outputs[0].shape)

    def __call__(self, x, training=False):
        import numpy as np
        import tensorflow as tf

        outputs = tf.numpy_function(
            lambda batch: np.asarray(self.run(batch), "float32"), [x], tf.float32)
        outputs.set_shape([None] * self.rank)
        return outputs


def compare_metrics(task, model, runtime, examples, tokenizer):
    """`{metric: {"keras", "exported", "delta"}}` for the task's scalar metrics."""
    keras_metrics = task.evaluate(model, examples, tokenizer)
    exported = task.evaluate(RuntimeModel(runtime, model), examples, tokenizer)
    return {name: {"keras": keras_metrics[name], "exported": exported[name],
                   "delta": exported[name] - keras_metrics[name]}
            for name in task.metrics
            if isinstance(keras_metrics.get(name), (int, float))}


def _evaluation_examples(config, task, count):
    """The first `count` examples of the run's validation data: the valid
    file, else the test file, else the held-out part of the training file."""
    if config.valid or config.test:
        examples = task.read_files(config.valid or config.test)
    else:
        examples = task.split(task.read_files(config.train))[1]
    return head(examples, count)


def head(examples, count):
    """The first `count` examples: of a list (or any iterable of texts), or
    of a dataclass of parallel lists (`TextExamples`, `TaggedSentences`)."""
    import dataclasses
    import itertools

    if dataclasses.is_dataclass(examples):
        return dataclasses.replace(examples, **{
            field.name: getattr(examples, field.name)[:count]
            for field in dataclasses.fields(examples)
            if isinstance(getattr(examples, field.name), list)})
    return list(itertools.islice(examples, count))


def _import(reference):
    import importlib

    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def run(args):
    import keraslm
    from keraslm import registry
    from keraslm.training import RunDirectory, TrainConfig, load_run
    from keraslm.training.run_directory import atomic_write

    exporter = registry.exporters.get(args.format)  # an unknown format fails first
    run_dir = RunDirectory(args.run_dir)
    config = TrainConfig.from_run(run_dir.path)
    tasks = exporter.metadata.get("tasks")  # an exporter for some tasks only
    if tasks and config.task not in tasks:
        accepted = [c.name for c in registry.exporters
                    if config.task in c.metadata.get("tasks", (config.task,))]
        raise ValueError(
            f"The {exporter.name} exporter exports {' or '.join(tasks)} runs. Received: a "
            f"{config.task} run ({run_dir.path}). Accepted: --format {', '.join(accepted)}.")
    options = exporter_options(exporter, args, config)
    output = args.output or os.path.join(
        run_dir.file("export"), "model" + exporter.metadata.get("file_extension", ""))
    if os.path.exists(output) and not args.overwrite:
        raise ValueError(f"The output {output} exists. Pass --overwrite to replace "
                         f"it, or -o to write elsewhere.")
    quantized = options.get("quantize") not in (None, "none")
    config, task, model, tokenizer = load_run(run_dir.path, args.checkpoint)
    examples = _evaluation_examples(config, task, args.eval_examples) if quantized else None
    if "representative_inputs" in options:
        length = options.get("sequence_length") or config.sequence_length
        options["representative_inputs"] = task.sample_inputs(
            task.read_files(config.train), tokenizer, shapes=((16, length),) * 4)
    parameters = inspect.signature(exporter.load()).parameters
    if "tokenizer" in parameters:  # generation exporters ship the tokenizer
        options["tokenizer"] = tokenizer
    if "generate_options" in parameters:
        options["generate_options"] = task.generate_options()
    result = keraslm.export(model, output, format=args.format, atol=args.atol,
                            inputs=sample_inputs(config, task, tokenizer), **options)
    runtime = exporter.metadata.get("runtime")
    if quantized and runtime and result.max_abs_diff is not None:
        result.details["metrics"] = compare_metrics(
            task, model, _import(runtime)(output), examples, tokenizer)
        result.details["metrics_examples"] = len(examples)
        atomic_write(output + ".report.json", json.dumps(result.to_dict(), indent=2))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(result.summary())
    for name, values in result.details.get("metrics", {}).items():
        print(f"  {name}: Keras {values['keras']:.4f}, exported {values['exported']:.4f} "
              f"({values['delta']:+.4f})")
    return 0
