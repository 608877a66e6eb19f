"""Pictures of a reviews classifier: attention, saliency, confusion matrix, ROC.

Trains a small Transformer encoder on `reviews/train.csv` (tested on
`test.csv`) within `--minutes`, then draws through the CLI, `keraslm plot
RUN ...`: the training curve, the confusion matrix and the ROC curve on the
test reviews, attention heatmaps (every layer and head) and a saliency page
(HTML and PNG) for a review of the test set. The pictures are copied to
`examples/results/reviews_pictures/` with a JSON of the run's test metrics.

    .venv/bin/python examples/reviews_pictures.py            # ~5 min
    .venv/bin/python examples/reviews_pictures.py --quick    # ~2 min
"""

import csv
import os
import shutil
import subprocess
import sys

import _common

NAME = "reviews_pictures"

MODEL = dict(task="classify", tokenizer="wordpiece", vocabulary_size=4000, lowercase=True,
             sequence_length=128, model="transformer_encoder", preset=None,
             model_options=dict(num_layers=2, num_heads=4, hidden_dim=64,
                                intermediate_dim=128, max_sequence_length=128, dropout=0.1),
             head_options=dict(pooling="mean", dropout=0.1), batch_size=32,
             learning_rate=2e-3, schedule="warmup_linear", checkpoint_every=100)
PICTURES = ("training_curve.png", "confusion_matrix.png", "roc_curve.png", "attention.png",
            "saliency.png", "saliency.html")


def short_review(path, longest=22):
    """The first test review of at most `longest` words (readable axes)."""
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if 8 <= len(row["text"].split()) <= longest and "<" not in row["text"]:
                return row["text"]
    raise SystemExit(f"{path} has no review of 8 to {longest} words")


def main():
    arguments = _common.parser(NAME, __doc__.splitlines()[0])
    arguments.add_argument("--minutes", type=float, default=4.0)
    args = arguments.parse_args()

    import keraslm

    train_path = _common.data_file(args, "reviews", "train.csv")
    test_path = _common.data_file(args, "reviews", "test.csv")
    run_dir = _common.run_directory(args, NAME)
    budget = "1.5m" if args.quick else f"{args.minutes}m"
    with _common.Timer() as timer:
        result = keraslm.train(train=train_path, test=test_path, output_dir=run_dir,
                               seed=args.seed, time_budget=budget, **MODEL)
    text = short_review(test_path)
    command = [sys.executable, "-m", "keraslm", "plot", run_dir, "--curves", "--confusion",
               "--roc", "--attention", text, "--saliency", text]
    subprocess.run(command, check=True)
    target = os.path.join(_common.RESULTS, NAME) if not args.quick else os.path.join(
        run_dir, NAME)
    os.makedirs(target, exist_ok=True)
    for name in PICTURES:
        shutil.copy(os.path.join(run_dir, name), os.path.join(target, name))
    _common.write_results(args, NAME, {
        "run_dir": run_dir, "review": text,
        "plot_command": "keraslm " + " ".join(command[3:]),
        "pictures": [os.path.join(target, name) for name in PICTURES],
        "hyperparameters": _common.hyperparameters(result.config),
        "time": {**timer.as_dict(), "time_budget": budget,
                 "steps": result.metrics.get("steps")},
        "test": _common.rounded(result.metrics.get("test")),
    })


if __name__ == "__main__":
    main()
