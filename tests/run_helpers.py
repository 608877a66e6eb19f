"""Helpers for tests that read training run directories."""

import csv


def first_losses(run_dir, count=5):
    """Mean training loss of the first `count` steps (a nearly untrained model)."""
    with open(f"{run_dir}/steps.csv") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return sum(float(r["loss"]) for r in rows) / len(rows)


def last_losses(run_dir, count=20):
    """Mean training loss of the last `count` steps."""
    with open(f"{run_dir}/steps.csv") as handle:
        rows = list(csv.DictReader(handle))[-count:]
    return sum(float(r["loss"]) for r in rows) / len(rows)


def most_frequent_label_share(run_dir, path):
    """Share of the most frequent label among the positions a run's task scores
    on `path`: the accuracy of always predicting that one token."""
    import collections

    import numpy as np

    from keraslm.training import load_run

    _, task, _, tokenizer = load_run(run_dir)
    counts = collections.Counter()
    for _, labels in task.dataset(task.read(path), tokenizer, training=False).dataset:
        labels = np.asarray(labels)
        counts.update(labels[labels != -100].tolist())
    return max(counts.values()) / sum(counts.values())
