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
