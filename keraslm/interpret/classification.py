"""A classification run's predictions, its confusion-matrix heatmap and ROC curves."""

from typing import NamedTuple

import numpy as np


class ClassificationPredictions(NamedTuple):
    """What `classification_predictions` returns."""

    label_ids: np.ndarray
    """int `(examples,)`: the true class of each example."""
    probabilities: np.ndarray
    """float `(examples, num_classes)`: the model's softmax."""
    labels: list
    """The class names, in the order of the columns."""
    source: str
    """Which data it is (`"test file reviews/test.csv"`)."""


def roc_curve(is_positive, scores):
    """The ROC curve of scores for a binary question, at every distinct score.

    Thresholds are the distinct scores from the highest down: at each, the
    examples scoring at least that much are called positive. The curve
    starts at `(0, 0)` (threshold `inf`) and ends at `(1, 1)`; it equals
    scikit-learn's `roc_curve(..., drop_intermediate=False)`, and the area
    under it (`roc_auc`, trapezoids) its `roc_auc_score`.

    Args:
        is_positive: bool array-like `(examples,)`.
        scores: float array-like `(examples,)`; higher means more positive.

    Returns:
        `(false_positive_rate, true_positive_rate, thresholds)`, NumPy arrays.

    Raises:
        ValueError: the examples are all positive or all negative (the curve
            is not defined), or the shapes differ.

    Example:

    ```python
    fpr, tpr, thresholds = keraslm.interpret.roc_curve(
        [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    # fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1]
    ```
    """
    positive = np.asarray(is_positive).astype(bool).ravel()
    scores = np.asarray(scores, dtype="float64").ravel()
    if positive.shape != scores.shape or positive.size == 0:
        raise ValueError(f"`is_positive` and `scores` must be non-empty and of the same "
                         f"length. Received: {positive.size} and {scores.size} values")
    positives = int(positive.sum())
    negatives = positive.size - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"A ROC curve needs positive and negative examples. Received: "
                         f"{positives} positive and {negatives} negative")
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    # The last example at each distinct score: everything up to it is called positive.
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(positive)[last]
    false_positives = last + 1 - true_positives
    return (np.r_[0.0, false_positives / negatives], np.r_[0.0, true_positives / positives],
            np.r_[np.inf, scores[last]])


def roc_auc(false_positive_rate, true_positive_rate):
    """The area under a ROC curve (trapezoids).

    Example:

    ```python
    keraslm.interpret.roc_auc(*keraslm.interpret.roc_curve([0, 1], [0.2, 0.9])[:2])  # 1.0
    ```
    """
    x, y = np.asarray(false_positive_rate), np.asarray(true_positive_rate)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _evaluation_examples(task, config, data=None):
    """`(examples, source)`: `data`, else the run's test file, else its
    validation file, else the validation share of its training data (the
    split the trainer made: same fraction and seed)."""
    if data is not None:
        return task.read(data), f"file {data}"
    if config.test:
        return task.read(config.test), f"test file {config.test}"
    if config.valid:
        return task.read(config.valid), f"validation file {config.valid}"
    _, valid = task.split(task.read(config.train))
    return valid, (f"validation split of {config.train} "
                   f"({config.validation_fraction:.0%}, seed {config.seed})")


def classification_predictions(run_dir, data=None, checkpoint="final", model=None):
    """A classification run's softmax on labelled data, with the true labels.

    Args:
        run_dir: str. A run of a task with a classification head (`classify`,
            `sentiment`).
        data: str or None. A labelled file in the task's format; None: the
            run's test file, else its validation file, else the validation
            split of its training data.
        checkpoint: str. `final`, `best` or `last`. Defaults to `"final"`.
        model: a loaded model of the run, or None to load `checkpoint`.

    Returns:
        `ClassificationPredictions(label_ids, probabilities, labels, source)`.

    Example:

    ```python
    predictions = keraslm.interpret.classification_predictions("runs/reviews")
    keraslm.interpret.plot_roc_curve(predictions, "roc_curve.png")
    ```
    """
    import keras

    from keraslm.training import RunDirectory, TrainConfig, load_task

    run = RunDirectory(run_dir)
    config = TrainConfig.from_run(run.path)
    task = load_task(run.path, config)
    if getattr(task, "head", None) != "classification" or task.label_vocabulary is None:
        raise ValueError(f"Classification predictions need a run of a task with a "
                         f"classification head (classify, sentiment). Received a run of "
                         f"task {config.task!r}: {run.path}")
    examples, source = _evaluation_examples(task, config, data)
    model = model if model is not None else run.load_model(checkpoint)
    tokenizer = run.load_tokenizer()
    truth, probabilities = [], []
    for x, y in task.dataset(examples, tokenizer, training=False).dataset:
        logits = model(x, training=False)
        truth.append(np.asarray(y))
        probabilities.append(np.asarray(keras.ops.softmax(
            keras.ops.cast(logits, "float32"), axis=-1)))
    return ClassificationPredictions(np.concatenate(truth).astype("int64"),
                                     np.concatenate(probabilities),
                                     list(task.label_vocabulary.labels), source)


def plot_confusion_matrix(predictions, path, title=None):
    """A heatmap of the confusion matrix: rows the true class, columns the
    predicted one (the arg-max), each cell with its count and its share of
    the row.

    Args:
        predictions: `ClassificationPredictions`.
        path: str. The PNG to write.
        title: str or None.

    Returns:
        `path`.

    Example:

    ```python
    keraslm.interpret.plot_confusion_matrix(predictions, "confusion_matrix.png")
    ```
    """
    from keraslm.evaluation import classification_metrics
    from keraslm.interpret._common import pyplot, save_figure

    labels = list(predictions.labels)
    report = classification_metrics(predictions.label_ids, predictions.probabilities,
                                    labels=labels)
    matrix = np.asarray(report["confusion_matrix"], dtype="int64")
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    count = len(labels)
    plt = pyplot()
    size = max(4.0, 0.7 * count + 2.5)
    figure, axis = plt.subplots(figsize=(size + 1.2, size), layout="constrained")
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    font = 10 if count <= 8 else (7 if count <= 16 else 5)
    for row in range(count):
        for column in range(count):
            color = "white" if shares[row, column] > 0.55 else "black"
            axis.text(column, row, f"{matrix[row, column]}\n{shares[row, column]:.0%}",
                      ha="center", va="center", color=color, fontsize=font)
    axis.set_xticks(range(count), labels, rotation=45 if count > 4 else 0,
                    ha="right" if count > 4 else "center", fontsize=font)
    axis.set_yticks(range(count), labels, fontsize=font)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    figure.colorbar(image, ax=axis, shrink=0.8, label="share of the true class (row)")
    heading = (title + "\n") if title else ""
    axis.set_title(f"{heading}accuracy {report['accuracy']:.3f} on "
                   f"{len(predictions.label_ids):,} examples\n{predictions.source}",
                   fontsize=9)
    return save_figure(figure, path)


def plot_roc_curve(predictions, path, title=None, positive_label=None):
    """ROC curves: for two classes the curve of the positive class, for more
    one curve per class against the rest; each with its AUC.

    Args:
        predictions: `ClassificationPredictions`.
        path: str. The PNG to write.
        title: str or None.
        positive_label: str or None. With two classes, the class whose
            probability is scored; None: the second label, as the
            `roc_auc` of `keraslm evaluate`.

    Returns:
        `path`.

    Example:

    ```python
    keraslm.interpret.plot_roc_curve(predictions, "roc_curve.png")
    ```
    """
    from keraslm.interpret._common import pyplot, save_figure

    labels = list(predictions.labels)
    truth, probabilities = predictions.label_ids, predictions.probabilities
    if len(labels) == 2:
        if positive_label is None:
            positive_label = labels[1]
        if positive_label not in labels:
            raise ValueError(f"`positive_label` must be one of {labels}. "
                             f"Received: positive_label={positive_label!r}")
        classes = [labels.index(positive_label)]
    elif positive_label is not None:
        raise ValueError(f"`positive_label` only applies to two classes. Received: "
                         f"positive_label={positive_label!r} for {len(labels)} classes")
    else:
        classes = range(len(labels))
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 6.0), layout="constrained")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8,
              label="chance (AUC 0.5)")
    areas, skipped = [], []
    for index in classes:
        positive = truth == index
        if positive.all() or not positive.any():
            skipped.append(labels[index])
            continue
        false_positive_rate, true_positive_rate, _ = roc_curve(positive,
                                                               probabilities[:, index])
        area = roc_auc(false_positive_rate, true_positive_rate)
        areas.append(area)
        name = (f"'{labels[index]}' (positive)" if len(labels) == 2
                else f"'{labels[index]}' vs rest")
        axis.plot(false_positive_rate, true_positive_rate, linewidth=1.6,
                  label=f"{name}, AUC {area:.3f}")
    if not areas:
        plt.close(figure)
        raise ValueError(f"No ROC curve can be drawn: every class of {labels} is present "
                         f"in all or none of the {len(truth)} examples ({predictions.source})")
    axis.set_xlim(-0.01, 1.01)
    axis.set_ylim(-0.01, 1.01)
    axis.set_aspect("equal")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right", fontsize=8)
    summary = (f"AUC {areas[0]:.3f}" if len(labels) == 2
               else f"macro AUC (one-vs-rest) {np.mean(areas):.3f}")
    if skipped:
        summary += f"; no curve for {skipped} (absent or alone)"
    heading = (title + "\n") if title else ""
    axis.set_title(f"{heading}{summary} on {len(truth):,} examples\n{predictions.source}",
                   fontsize=9)
    return save_figure(figure, path)
