"""`keraslm evaluate RUN_DIR [--data FILE]`: the task's metrics of a run.

Prints them as tables (rich): one `metric | value` table of the single
numbers, one table per breakdown (`per_class` of `classify`, `per_type` of a
tagging run on entity tags), and the confusion matrix as a grid (rows: true
class, columns: predicted). `--json` prints the metrics as JSON instead. The
metrics are also written to `RUN_DIR/evaluation.json` (`{"data",
"checkpoint", "metrics"}`), and files the task produces while evaluating
(its `evaluation_files`: `{file name: text}`, e.g. the translations of a
`translate` run) into the run directory; the command says where.

```bash
keraslm evaluate runs/lm --data test.txt --eval-stride 64
keraslm evaluate runs/reviews --data test.csv --checkpoint best
keraslm evaluate runs/ner --data test.conll --json > scores.json
```
"""

import dataclasses
import glob
import json
import math
import numbers
import os
import sys

from keraslm.commands._run_dir import configure_run_dir


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--data", help="file to evaluate on (default: the run's "
                                       "validation file)")
    parser.add_argument("--eval-stride", type=int, default=None, metavar="N",
                        help="tasks with an eval_stride option (lm): score in windows "
                             "every N tokens, the rest context (default: the run's)")
    parser.add_argument("--json", action="store_true",
                        help="print the metrics as JSON instead of tables")


def run(args):
    from keraslm.training import RunDirectory, TrainConfig, load_task
    from keraslm.training.run import build_loss

    if args.data and not glob.has_magic(args.data) and not os.path.exists(args.data):
        # Checked before anything heavy is imported (the task's files need TensorFlow).
        raise FileNotFoundError(f"--data {args.data}: no such file or directory. Expected "
                                f"the file to evaluate on (or a directory, or a glob).")
    run_dir = RunDirectory(args.run_dir)
    config = TrainConfig.from_run(run_dir.path)
    if args.eval_stride is not None:
        if "eval_stride" not in config.task_class.option_names():
            raise ValueError(f"--eval-stride applies to tasks with an eval_stride option "
                             f"(lm). Received a run of task {config.task!r}.")
        config = dataclasses.replace(
            config, task_options={**config.task_options, "eval_stride": args.eval_stride})
    task = load_task(run_dir.path, config)
    task.check()
    path = args.data or config.valid
    if not path:
        raise ValueError("This run held out part of its training file for "
                         "validation; pass --data FILE to evaluate on a file.")
    checkpoint = run_dir.checkpoint(args.checkpoint)
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: {checkpoint} does not "
                                f"exist (has the run finished?).")
    examples = task.read_files(path)  # before the model loads: a bad file fails at once
    model, tokenizer = run_dir.load_model(args.checkpoint), run_dir.load_tokenizer()
    metrics = task.evaluate(model, examples, tokenizer, build_loss(config, task))
    if args.json:
        print(json.dumps(metrics, indent=2, default=str))
    else:
        print_metrics(metrics, title=f"{config.task} run {run_dir.path} "
                                     f"({args.checkpoint}) on {path}")
    written = write_evaluation(run_dir.path, metrics, data=str(path),
                               checkpoint=args.checkpoint,
                               files=getattr(task, "evaluation_files", None))
    # With --json, stdout holds the JSON alone.
    stream = sys.stderr if args.json else sys.stdout
    for what, file_path in written.items():
        print(f"{what} written to {file_path}", file=stream)
    return 0


def write_evaluation(run_dir, metrics, data=None, checkpoint=None, files=None) -> dict:
    """Writes `evaluation.json` and a task's evaluation files into `run_dir`.

    Args:
        run_dir: str. The run directory.
        metrics: dict. What `Task.evaluate` returned.
        data: str or None. The file evaluated on.
        checkpoint: str or None. The checkpoint name (final, best, last).
        files: dict or None. `{file name: text}` (a task's
            `evaluation_files`), each written as `run_dir/name`. Names must
            be plain file names that are not the run's own files.

    Returns:
        dict: `{what: path written}`: `"metrics"` (`evaluation.json`) first,
        then each of `files` by its name.

    Example:

    ```python
    write_evaluation("runs/enes", {"bleu": 17.2}, data="test.tsv",
                     files={"translations.txt": "Hola.\\n"})
    # {'metrics': 'runs/enes/evaluation.json',
    #  'translations.txt': 'runs/enes/translations.txt'}
    ```
    """
    from keraslm.training.run_directory import (RunDirectory, atomic_write,
                                                check_evaluation_files,
                                                write_evaluation_files)

    run = RunDirectory(run_dir)
    metrics_path = run.file("evaluation")
    files = check_evaluation_files(files)  # before anything is written
    atomic_write(metrics_path, json.dumps(
        {"data": data, "checkpoint": checkpoint, "metrics": metrics},
        indent=2, default=str) + "\n")
    written = {"metrics": metrics_path}
    written.update(write_evaluation_files(run.path, files))
    return written


def print_metrics(metrics, title=None, console=None):
    """Prints a task's metrics as tables (rich).

    Single numbers (and strings) go into one `metric | value` table; a dict
    of dicts (`per_class`, `per_type`) into a table with a row per key; a
    `confusion_matrix` (list of rows) into a grid labelled by `labels`
    (rows: true class, columns: predicted). Anything else is shown as
    JSON in the value column. Floats have 4 decimals.

    Args:
        metrics: dict. What `Task.evaluate` returned.
        title: str or None. A line printed above the tables.
        console: `rich.console.Console` or None (standard output).

    Example:

    ```python
    from keraslm.commands.evaluate import print_metrics

    print_metrics({"accuracy": 0.75, "confusion_matrix": [[2, 1], [0, 1]],
                   "labels": ["ham", "spam"]})
    ```
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console(highlight=False)
    consumed, breakdowns = set(), []
    matrix = metrics.get("confusion_matrix")
    if _is_matrix(matrix):
        labels = metrics.get("labels")
        if not (isinstance(labels, list) and len(labels) == len(matrix)):
            labels = [str(i) for i in range(len(matrix))]
        consumed |= {"confusion_matrix", "labels"}
    if title:
        console.print(Text(title), soft_wrap=True)  # a long path stays on one line
    main = Table()
    main.add_column("metric")
    main.add_column("value", justify="right")
    for key, value in metrics.items():
        if key in consumed:
            continue
        if isinstance(value, dict) and value and all(
                isinstance(row, dict) for row in value.values()):
            breakdowns.append((key, value))
        elif isinstance(value, dict) and value and all(map(_is_scalar, value.values())):
            breakdowns.append((key, {name: {"value": v} for name, v in value.items()}))
        else:
            main.add_row(_cell(key), _cell(value))
    console.print(main)
    for key, rows in breakdowns:
        table = Table(title=key, title_justify="left")
        table.add_column(_ROW_NAMES.get(key, "name"))
        columns = list(dict.fromkeys(column for row in rows.values() for column in row))
        for column in columns:
            table.add_column(column, justify="right")
        for name, row in rows.items():
            table.add_row(_cell(name), *(_cell(row.get(column, "")) for column in columns))
        console.print(table)
    if "confusion_matrix" in consumed:
        table = Table(title="confusion_matrix", title_justify="left")
        table.add_column("true \\ predicted")
        for label in labels:
            table.add_column(_cell(label), justify="right")
        for label, row in zip(labels, matrix):
            table.add_row(_cell(label), *(_cell(count) for count in row))
        console.print(table)


_ROW_NAMES = {"per_class": "class", "per_type": "type"}


def _is_scalar(value):
    return value is None or isinstance(value, (numbers.Number, str))


def _is_matrix(value):
    return bool(isinstance(value, list) and value
                and all(isinstance(row, list) and len(row) == len(value) for row in value)
                and all(isinstance(x, numbers.Real) for row in value for x in row))


def _cell(value):
    """A table cell: floats with 4 decimals, None as n/a, markup escaped."""
    from rich.text import Text

    if isinstance(value, bool) or value is None:
        text = "n/a" if value is None else str(value).lower()
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            text = str(value)
        elif value != 0 and abs(value) < 1e-3:
            text = f"{value:.3e}"
        else:
            text = f"{value:.4f}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return Text(text)
