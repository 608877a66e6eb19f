"""Stratified k-fold cross-validation of a classification run
(`keraslm train --task classify --folds K`, `keraslm.training.cross_validate`).

The training file's examples are dealt into `K` folds stratified by label
(`stratified_folds`); fold `k` trains a run on the other folds and is
evaluated on fold `k`. The output directory holds:

- `folds.json`: the fold of each example (with the data's fingerprint and
  the seed), written first;
- `fold_1/` ... `fold_K/`: ordinary run directories (`keraslm evaluate`,
  `keraslm plot`, `keraslm export` work on each), trained from
  `data/fold_k_train.jsonl` and validated on `data/fold_k_valid.jsonl`;
- `cross_validation.json`: each fold's final metrics, and the mean and
  standard deviation (sample, `ddof=1`) of every numeric metric.

A fold whose run finished is kept when the same command runs again (after
an interruption, say): only the folds without `metrics.json` are trained,
and a half-trained fold is resumed from its checkpoint.

Example:

```python
cv = keraslm.training.cross_validate(task="classify", train="reviews/train.csv",
                                     folds=5, epochs=3, output_dir="runs/cv")
cv["mean"]["accuracy"], cv["std"]["accuracy"]
```
"""

import dataclasses
import hashlib
import json
import math
import numbers
import os

import numpy as np


def stratified_folds(labels, folds, seed=0):
    """The fold (0 .. folds - 1) of each example, stratified by label.

    Within each label the examples are shuffled (by `seed`) and dealt to
    the folds in turn, the dealing going on from label to label, so each
    label's count differs by at most one between folds and so do the fold
    sizes.

    Example:

    ```python
    stratified_folds(["pos", "neg", "pos", "neg", "pos"], 2)  # e.g. [0, 1, 1, 0, 0]
    ```
    """
    labels = list(labels)
    _check_folds(folds, len(labels))
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), "int64")
    dealt = 0
    for label in sorted(set(labels), key=str):
        members = np.flatnonzero(np.array([x == label for x in labels]))
        rng.shuffle(members)
        assignment[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return assignment.tolist()


def _check_folds(folds, count):
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ValueError(f"`folds` must be an integer >= 2. Received: folds={folds!r}")
    if folds > count:
        raise ValueError(f"`folds` must be at most the number of training examples "
                         f"({count}). Received: folds={folds}")


def cross_validate(config=None, *, folds=5, **options):
    """Trains `folds` runs of a classify configuration, each validated on
    its held-out fold, and returns the summary written to
    `cross_validation.json` (see the module docstring).

    Args:
        config: a `TrainConfig`, or None to build one from `options`.
        folds: int >= 2. Defaults to `5`.
        **options: `TrainConfig` fields, as for `keraslm.train`. `valid`
            must not be set (each fold is the validation data); `test`, if
            set, is evaluated by every fold's run.

    Returns:
        dict: `folds`, `seed`, `per_fold` (each run's directory and final
        metrics), `mean` and `std` (numeric final metrics).
    """
    from keraslm.tasks.base import get_task
    from keraslm.training.config import TrainConfig
    from keraslm.training.run import train

    if config is None:
        config = TrainConfig.from_dict(options, source="keraslm.training.cross_validate()")
    elif options:
        config = dataclasses.replace(config, **options)
    config.validate()
    if config.task != "classify":
        raise ValueError(f"--folds (cross-validation stratified by label) applies to "
                         f"task 'classify'. Received: task={config.task!r}")
    if config.valid:
        raise ValueError(f"--folds validates each run on its held-out fold; drop --valid. "
                         f"Received: valid={config.valid!r}")
    if not config.output_dir:
        raise ValueError("Cross-validation needs an output directory (-o DIR).")
    task = get_task(config)
    examples = task.read_files(config.train)  # a bad file fails before any training
    if examples.labels is None:
        raise ValueError(f"{config.train} has no label column ({config.label_column!r}); "
                         f"cross-validation needs labels.")
    assignment = stratified_folds(examples.labels, folds, config.seed)
    root = config.output_dir
    plan = {"folds": folds, "seed": config.seed, "train": str(config.train),
            "fingerprint": _fingerprint(examples.texts, examples.labels),
            "assignment": assignment}
    _start_or_continue(root, plan)
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir, exist_ok=True)
    per_fold = []
    for fold in range(folds):
        run_dir = os.path.join(root, f"fold_{fold + 1}")
        metrics_path = os.path.join(run_dir, "metrics.json")
        if not os.path.exists(metrics_path):
            paths = {}
            for part, keep in (("train", lambda f: f != fold), ("valid", lambda f: f == fold)):
                paths[part] = os.path.join(data_dir, f"fold_{fold + 1}_{part}.jsonl")
                _write_jsonl(paths[part], [
                    (text, label) for text, label, f in zip(examples.texts, examples.labels,
                                                            assignment) if keep(f)])
            _say(config, f"[folds] fold {fold + 1} of {folds}: "
                         f"{assignment.count(fold)} held out")
            if os.path.exists(os.path.join(run_dir, "config.json")):
                train(resume=run_dir, verbose=config.verbose)
            else:
                train(dataclasses.replace(
                    config, train=paths["train"], valid=paths["valid"], output_dir=run_dir,
                    format="jsonl", text_column="text", label_column="label"))
        with open(metrics_path, encoding="utf-8") as handle:
            final = json.load(handle)["final"]
        per_fold.append({"fold": fold + 1, "run_dir": run_dir,
                         "held_out": assignment.count(fold), "final": final})
    summary = {"folds": folds, "seed": config.seed, "per_fold": per_fold,
               **summarize([entry["final"] for entry in per_fold])}
    path = os.path.join(root, "cross_validation.json")
    with open(path + ".partial", "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, default=str)
    os.replace(path + ".partial", path)
    _say(config, f"[folds] {path}: " + ", ".join(
        f"{name} {summary['mean'][name]:.4f} ± {summary['std'][name]:.4f}"
        for name in ("accuracy", "macro_f1", "roc_auc") if name in summary["mean"]))
    return summary


def summarize(finals):
    """`{"mean": ..., "std": ...}` of the numeric metrics every fold has
    (sample standard deviation, `ddof=1`; nested ones such as per-class
    tables are left out)."""
    names = [name for name, value in finals[0].items()
             if isinstance(value, numbers.Real) and not isinstance(value, bool)
             and all(isinstance(f.get(name), numbers.Real) for f in finals)]
    mean, std = {}, {}
    for name in names:
        values = np.array([float(f[name]) for f in finals])
        mean[name] = float(values.mean())
        std[name] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return {"mean": mean, "std": std}


def _fingerprint(texts, labels):
    digest = hashlib.sha256()
    for text, label in zip(texts, labels):
        digest.update(f"{label}\t{text}\n".encode("utf-8"))
    return digest.hexdigest()


def _start_or_continue(root, plan):
    """Writes `folds.json` in a new (or empty) directory; in one that has
    it, checks it is the same split (same data, folds and seed)."""
    path = os.path.join(root, "folds.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
        changed = [key for key in ("folds", "seed", "fingerprint")
                   if previous.get(key) != plan[key]]
        if changed:
            raise ValueError(
                f"{root} holds a cross-validation with other {', '.join(changed)} "
                f"(folds={previous.get('folds')}, seed={previous.get('seed')}, "
                f"train={previous.get('train')!r}). Choose another output directory (-o).")
        return
    if os.path.exists(root) and os.listdir(root):
        raise ValueError(f"{root} exists and is not a cross-validation directory (no "
                         f"folds.json). Choose another output directory (-o).")
    os.makedirs(root, exist_ok=True)
    with open(path + ".partial", "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
    os.replace(path + ".partial", path)


def _write_jsonl(path, rows):
    with open(path + ".partial", "w", encoding="utf-8") as handle:
        for text, label in rows:
            handle.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    os.replace(path + ".partial", path)


def _say(config, message):
    if config.verbose:
        print(message, flush=True)
