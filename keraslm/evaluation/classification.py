"""Classification metrics from labels and predicted probabilities.

`classification_metrics` gives what practitioners report for a classifier:
accuracy; precision, recall and F1 per class and averaged (macro, micro,
weighted by support); the confusion matrix; and ROC-AUC (binary, or
one-vs-rest per class and macro-averaged). Definitions are scikit-learn's
(`precision_recall_fscore_support`, `roc_auc_score`), which the tests
compare against; a quantity that is undefined (a class never predicted has
no precision) is 0 as there, and an AUC that cannot be computed (a class
absent from the labels) is None.

Example:

```python
from keraslm.evaluation import classification_metrics

report = classification_metrics([0, 1, 1, 0], [[0.8, 0.2], [0.3, 0.7],
                                               [0.6, 0.4], [0.9, 0.1]],
                                labels=["ham", "spam"])
report["macro"]["f1"], report["roc_auc"]
```
"""

import numpy as np


def _ranks(values):
    """1-based ranks, ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype="float64")
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def binary_roc_auc(is_positive, scores):
    """Area under the ROC curve (the Mann-Whitney statistic), or None when
    the labels hold only one class.

    Example:

    ```python
    binary_roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])   # 0.75
    ```
    """
    is_positive = np.asarray(is_positive).astype(bool)
    scores = np.asarray(scores, dtype="float64")
    positives = int(is_positive.sum())
    negatives = len(is_positive) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = _ranks(scores)
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2)
                 / (positives * negatives))


def classification_metrics(y_true, probabilities, labels=None):
    """Accuracy, precision/recall/F1 (per class, macro, micro, weighted),
    confusion matrix and ROC-AUC.

    Args:
        y_true: int array `[n]`, class ids.
        probabilities: float array `[n, num_classes]` (softmax outputs; the
            prediction is the argmax).
        labels: list of str or None. Class names for the per-class table.

    Returns:
        dict: `accuracy`, `macro`/`micro`/`weighted` (each `precision`,
        `recall`, `f1`; micro equals accuracy for single-label data),
        `per_class` (`{label: {precision, recall, f1, support, roc_auc}}`),
        `confusion_matrix` (a list of rows: `confusion_matrix[i][j]` counts
        examples of true class `labels[i]` predicted as `labels[j]`, as
        scikit-learn's `confusion_matrix`), `labels` (the class names of its
        rows and columns), and `roc_auc`: binary AUC of the second class for
        two classes, else the macro average of the one-vs-rest AUCs that are
        defined (None if none).

    Example:

    ```python
    report = classification_metrics([0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]],
                                    labels=["ham", "spam"])
    report["confusion_matrix"]   # [[1, 0], [1, 1]]: one spam taken for ham
    report["labels"]             # ['ham', 'spam'] (rows true, columns predicted)
    report["micro"]["f1"]        # 0.667
    ```
    """
    y_true = np.asarray(y_true).astype("int64")
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2 or probabilities.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"`probabilities` must have shape [n, num_classes] with n = len(y_true) = "
            f"{y_true.shape[0]}. Received shape {list(probabilities.shape)}.")
    num_classes = probabilities.shape[1]
    labels = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
    if len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels for {num_classes} classes. Received: "
                         f"labels={labels!r}")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= num_classes):
        raise ValueError(f"`y_true` holds ids outside [0, {num_classes}). Received: "
                         f"min {y_true.min()}, max {y_true.max()}.")
    predicted = probabilities.argmax(axis=1)
    matrix = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(matrix, (y_true, predicted), 1)
    hits = np.diag(matrix).astype("float64")
    predicted_count = matrix.sum(axis=0).astype("float64")
    support = matrix.sum(axis=1).astype("float64")
    precision = np.divide(hits, predicted_count, out=np.zeros(num_classes),
                          where=predicted_count > 0)
    recall = np.divide(hits, support, out=np.zeros(num_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(num_classes), where=both > 0)
    # scikit-learn averages over the classes present in labels or predictions.
    present = (support + predicted_count) > 0
    total = support.sum()

    def average(weights):
        weights = np.where(present, weights, 0.0)
        scale = weights.sum()
        return {name: float((values * weights).sum() / scale) if scale else 0.0
                for name, values in (("precision", precision), ("recall", recall),
                                     ("f1", f1))}

    micro = float(hits.sum() / total) if total else 0.0
    class_auc = [binary_roc_auc(y_true == c, probabilities[:, c]) for c in range(num_classes)]
    if num_classes == 2:
        roc_auc = class_auc[1]
    else:
        defined = [value for value in class_auc if value is not None]
        roc_auc = float(np.mean(defined)) if defined else None
    return {
        "accuracy": micro,
        "macro": average(np.ones(num_classes)),
        "micro": {"precision": micro, "recall": micro, "f1": micro},
        "weighted": average(support),
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i]),
                    "roc_auc": class_auc[i]}
            for i, label in enumerate(labels)},
        "confusion_matrix": matrix.tolist(),
        "labels": labels,
        "roc_auc": roc_auc,
    }
