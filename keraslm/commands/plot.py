"""`keraslm plot RUN_DIR ...`: pictures of a run, written into it (or `-o DIR`).

| option | writes | runs |
|---|---|---|
| `--curves` | `training_curve.png` | any |
| `--confusion` | `confusion_matrix.png` | classification |
| `--roc` | `roc_curve.png` | classification |
| `--attention TEXT` | `attention.png` (layers x heads) | Transformer |
| `--saliency TEXT` | `saliency.html`, `saliency.png` | classification |

Without an option: `--curves`, and `--confusion --roc` for a
classification run. Each written path is printed on its own line; what
data the pictures come from goes to stderr. Requests are checked (the run,
its model, its task, the options) before any picture is drawn.

```bash
keraslm plot runs/reviews                                   # curves, confusion, ROC
keraslm plot runs/reviews --saliency "Great coffee, awful price." --target great
keraslm plot runs/reviews --confusion --roc --data reviews/other.csv -o pictures
keraslm plot runs/lm --attention "ROMEO: But soft" --checkpoint best
```
"""

import os
import sys

from keraslm.commands._run_dir import configure_run_dir

# Each option's file(s): `RunDirectory.FILES` keys.
FILES = {"curves": ("training_curve",), "confusion": ("confusion_matrix",),
         "roc": ("roc_curve",), "attention": ("attention",),
         "saliency": ("saliency_html", "saliency")}


def configure(parser):
    parser.epilog = ("Without an option: --curves, and --confusion --roc for a "
                     "classification run. Each written path is printed.")
    configure_run_dir(parser)
    parser.add_argument("--curves", action="store_true",
                        help="training and validation loss (training_curve.png)")
    parser.add_argument("--confusion", action="store_true",
                        help="confusion-matrix heatmap (confusion_matrix.png)")
    parser.add_argument("--roc", action="store_true",
                        help="ROC curve, one-vs-rest per class beyond two (roc_curve.png)")
    parser.add_argument("--attention", default=None, metavar="TEXT",
                        help="attention heatmaps of TEXT, per layer and head (attention.png)")
    parser.add_argument("--saliency", default=None, metavar="TEXT",
                        help="gradient x input token saliency of TEXT "
                             "(saliency.html, saliency.png)")
    parser.add_argument("--target", default=None, metavar="LABEL",
                        help="--saliency: the class to explain (default: the predicted one)")
    parser.add_argument("--data", default=None, metavar="FILE",
                        help="--confusion/--roc: labelled data (default: the run's test "
                             "file, else its validation file, else its validation split)")
    parser.add_argument("-o", "--output-dir", default=None, metavar="DIR",
                        help="where the pictures go (default: the run directory)")


def _requests(args, task):
    """The pictures asked for: a set of `FILES` keys."""
    wanted = {name for name in ("curves", "confusion", "roc") if getattr(args, name)}
    wanted |= {name for name in ("attention", "saliency") if getattr(args, name) is not None}
    if not wanted:
        wanted = {"curves"} | ({"confusion", "roc"} if _classifies(task) else set())
    return wanted


def _classifies(task):
    return getattr(task, "head", None) == "classification" and \
        getattr(task, "label_vocabulary", None) is not None


def check(args, run, config, task):
    """Refuses what cannot be drawn, before anything is loaded or computed.

    Returns:
        The set of pictures to draw.
    """
    from keraslm import registry

    for option in ("attention", "saliency"):
        text = getattr(args, option)
        if text is not None and not text.strip():
            raise ValueError(f"`--{option}` needs a non-empty text. Received: "
                             f"--{option}={text!r}")
    if args.target is not None and args.saliency is None:
        raise ValueError(f"`--target` applies to --saliency. Received: --target="
                         f"{args.target!r} without --saliency")
    wanted = _requests(args, task)
    if args.data is not None and not wanted & {"confusion", "roc"}:
        raise ValueError(f"`--data` applies to --confusion and --roc. Received: "
                         f"--data={args.data!r} without them")
    needs_labels = sorted(wanted & {"confusion", "roc", "saliency"})
    if needs_labels and not _classifies(task):
        tasks = sorted(c.name for c in registry.tasks
                       if getattr(c.load(), "head", None) == "classification")
        options = ", ".join(f"--{name}" for name in needs_labels)
        verb = "needs" if len(needs_labels) == 1 else "need"
        raise ValueError(f"{options} {verb} a run of a classification task "
                         f"({', '.join(tasks)}). Received a run of task {config.task!r}: "
                         f"{run.path}")
    if "curves" in wanted:
        run.require_file("steps", "--curves needs the run's training log")
    if wanted - {"curves"}:
        model_file = run.checkpoint(args.checkpoint)
        if not os.path.exists(model_file):
            options = sorted(wanted - {"curves"})
            raise FileNotFoundError(
                f"{', '.join(f'--{n}' for n in options)} "
                f"{'needs' if len(options) == 1 else 'need'} the "
                f"run's model: {model_file} does not exist (has the run finished? "
                f"--checkpoint best or last read the checkpoints). Received: {run.path}")
    if args.target is not None and args.target not in task.label_vocabulary.labels:
        raise ValueError(f"`--target` must be one of the run's labels "
                         f"{task.label_vocabulary.labels}. Received: --target={args.target!r}")
    if args.data is not None and not os.path.exists(args.data):
        raise FileNotFoundError(f"`--data` file not found. Received: --data={args.data!r}")
    return wanted


def _check_attention_model(model, config, task, run):
    from keraslm.interpret import attention_blocks

    try:
        attention_blocks(model)
    except ValueError as error:
        name = config.model or task.default_model
        found = str(error).split("Received: ", 1)[-1]
        raise ValueError(f"--attention needs a Transformer model (transformer_lm, or "
                         f"transformer_encoder with num_layers >= 1). Received a run of "
                         f"model {name!r} ({run.path}): {found}") from None


def run(args):
    from keraslm import interpret
    from keraslm.interpret._common import encode_text, framing, token_pieces
    from keraslm.training import RunDirectory, TrainConfig, load_task

    run_dir = RunDirectory(args.run_dir)
    run_dir.info()  # not a run: says so
    config = TrainConfig.from_run(run_dir.path)
    task = load_task(run_dir.path, config)
    wanted = check(args, run_dir, config, task)
    output = args.output_dir or run_dir.path
    os.makedirs(output, exist_ok=True)

    def target(option, index=0):
        return os.path.join(output, RunDirectory.FILES[FILES[option][index]])

    name = os.path.basename(os.path.normpath(run_dir.path))
    model = tokenizer = None
    if wanted - {"curves"}:
        model = run_dir.load_model(args.checkpoint)
        tokenizer = run_dir.load_tokenizer()
        if "attention" in wanted:
            _check_attention_model(model, config, task, run_dir)
    written = []
    if "curves" in wanted:
        from keraslm.training.plots import plot_training_curve

        written.append(plot_training_curve(run_dir.path, target("curves")))
    if "attention" in wanted:
        ids, cut = encode_text(tokenizer, args.attention, framing(task),
                               config.sequence_length)
        if cut:
            print(f"keraslm plot: --attention text cut to {config.sequence_length} tokens "
                  f"(the run's sequence length): {cut} dropped", file=sys.stderr)
        labels = [piece.label for piece in token_pieces(tokenizer, ids)]
        written.append(interpret.plot_attention(
            interpret.attention_scores(model, ids), labels,
            target("attention"),
            title=f"{name}: self-attention ({args.checkpoint} model, {len(ids)} tokens)"))
    if "saliency" in wanted:
        result = interpret.token_saliency(model, tokenizer, args.saliency, args.target,
                                          labels=task.label_vocabulary.labels,
                                          sequence_length=config.sequence_length)
        title = f"{name}: token saliency ({args.checkpoint} model)"
        written.append(interpret.write_saliency_html(result, target("saliency"),
                                                     title=title))
        written.append(interpret.plot_saliency(result, target("saliency", 1), title=title))
    if wanted & {"confusion", "roc"}:
        predictions = interpret.classification_predictions(run_dir.path, args.data,
                                                           model=model)
        print(f"keraslm plot: predictions of the {args.checkpoint} model on "
              f"{predictions.source} ({len(predictions.label_ids):,} examples)",
              file=sys.stderr)
        title = f"{name} ({args.checkpoint} model)"
        if "confusion" in wanted:
            written.append(interpret.plot_confusion_matrix(
                predictions, target("confusion"), title=title))
        if "roc" in wanted:
            written.append(interpret.plot_roc_curve(
                predictions, target("roc"), title=title))
    for path in written:
        print(path, flush=True)
    return 0
