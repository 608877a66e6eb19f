"""The training-curve PNG of a run."""

import csv
import os


def plot_training_curve(run_dir, path=None):
    """Plots per-step training loss and validation loss to a PNG.

    Reads `steps.csv` and `history.csv` of `run_dir`; writes
    `training_curve.png` there (or `path`) and returns its path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = [], []
    with open(os.path.join(run_dir, "steps.csv")) as handle:
        for row in csv.DictReader(handle):
            steps.append(int(row["step"]))
            losses.append(float(row["loss"]))
    with open(os.path.join(run_dir, "config.json")) as handle:
        interval = __import__("json").load(handle)["derived"]["checkpoint_interval"]
    validation = []
    history = os.path.join(run_dir, "history.csv")
    if os.path.exists(history):
        with open(history) as handle:
            for row in csv.DictReader(handle):
                if row.get("val_loss"):
                    validation.append(((int(row["epoch"]) + 1) * interval,
                                       float(row["val_loss"])))
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(steps, losses, linewidth=0.8, alpha=0.6, label="training loss (step)")
    if validation:
        axis.plot(*zip(*validation), "o-", label="validation loss")
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(os.path.basename(os.path.normpath(run_dir)))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path = path or os.path.join(run_dir, "training_curve.png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
