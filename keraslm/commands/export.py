"""`keraslm export RUN_DIR --format NAME`: export a run's model with a parity check.

The exporter runs the file in its own runtime on inputs of several shapes cut
from the run's own data (the task's `sample_inputs`) and compares the outputs
with Keras.

```bash
keraslm export runs/lm --format onnx
keraslm export runs/reviews --format saved_model -o out/reviews
```
"""

import os

from keraslm.commands._run_dir import configure_run_dir


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--format", default="saved_model",
                        help="an exporter name (keraslm plugins --all lists them)")
    parser.add_argument("-o", "--output", help="output path (default RUN_DIR/export/...)")
    parser.add_argument("--atol", type=float, default=1e-4)


def sample_inputs(config, task, tokenizer):
    """The task's parity-check inputs, cut from the run's validation (or
    training) file."""
    return task.sample_inputs(task.read_files(config.valid or config.train), tokenizer)


def run(args):
    import keraslm
    from keraslm import registry
    from keraslm.training import RunDirectory, load_run

    exporter = registry.exporters.get(args.format)  # an unknown format fails first
    run_dir = RunDirectory(args.run_dir)
    config, task, model, tokenizer = load_run(run_dir.path, args.checkpoint)
    output = args.output or os.path.join(
        run_dir.file("export"), "model" + exporter.metadata.get("file_extension", ""))
    result = keraslm.export(model, output, format=args.format, atol=args.atol,
                            inputs=sample_inputs(config, task, tokenizer))
    print(result.summary())
    return 0
