"""`keraslm evaluate RUN_DIR [--data FILE]`: the task's metrics of a run, as JSON.

```bash
keraslm evaluate runs/lm --data test.txt --eval-stride 64
keraslm evaluate runs/reviews --data test.csv --checkpoint best
```
"""

import dataclasses
import json

from keraslm.commands._run_dir import configure_run_dir


def configure(parser):
    configure_run_dir(parser)
    parser.add_argument("--data", help="file to evaluate on (default: the run's "
                                       "validation file)")
    parser.add_argument("--eval-stride", type=int, default=None, metavar="N",
                        help="tasks with an eval_stride option (lm): score in windows "
                             "every N tokens, the rest context (default: the run's)")


def run(args):
    from keraslm.training import RunDirectory, TrainConfig, load_task
    from keraslm.training.run import build_loss

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
    examples = task.read_files(path)  # before the model loads: a bad file fails at once
    model, tokenizer = run_dir.load_model(args.checkpoint), run_dir.load_tokenizer()
    metrics = task.evaluate(model, examples, tokenizer, build_loss(config, task))
    print(json.dumps(metrics, indent=2, default=str))
    return 0
