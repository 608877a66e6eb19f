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

    from keraslm.training.run_directory import RunDirectory

    run = RunDirectory(run_dir)
    steps, losses = [], []
    with open(run.file("steps")) as handle:
        for row in csv.DictReader(handle):
            steps.append(int(row["step"]))
            losses.append(float(row["loss"]))
    interval = run.info()["derived"]["checkpoint_interval"]
    validation = []
    history = run.file("history")
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
    path = path or run.file("training_curve")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
