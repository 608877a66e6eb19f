"""The registered metrics against scikit-learn on the same predictions."""

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score

import keraslm


@pytest.mark.parametrize("num_classes", [2, 5])
def test_confusion_matrix_and_macro_f1_equal_scikit_learn(num_classes):
    rng = np.random.default_rng(num_classes)
    true = rng.integers(0, num_classes, 400)
    logits = rng.standard_normal((400, num_classes)).astype("float32")
    logits[np.arange(400), true] += 1.0  # better than chance, not perfect
    predicted = logits.argmax(-1)
    matrix = keraslm.registry.metrics.build("confusion_matrix", num_classes=num_classes)
    f1 = keraslm.registry.metrics.build("macro_f1", num_classes=num_classes)
    for start in range(0, 400, 64):  # batch by batch, as an evaluation does
        matrix.update_state(true[start:start + 64], logits[start:start + 64])
        f1.update_state(true[start:start + 64], predicted[start:start + 64])
    np.testing.assert_array_equal(np.asarray(matrix.result()).astype(int),
                                  confusion_matrix(true, predicted))
    assert float(f1.result()) == pytest.approx(f1_score(true, predicted, average="macro"),
                                               rel=1e-6)


def test_macro_f1_skips_ignored_labels_and_absent_classes():
    # -100 (padding) is not scored; class 3 occurs nowhere and is left out.
    true = np.array([[0, 1, 2, -100], [2, 2, 1, -100]])
    predicted = np.array([[0, 2, 2, 3], [2, 1, 1, 0]])
    f1 = keraslm.registry.metrics.build("macro_f1", num_classes=4)
    f1.update_state(true, predicted)
    keep = true != -100
    assert float(f1.result()) == pytest.approx(
        f1_score(true[keep], predicted[keep], average="macro"), rel=1e-6)
    f1.reset_state()
    assert float(f1.result()) == 0.0


def test_num_classes_is_checked():
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        keraslm.registry.metrics.build("macro_f1", num_classes=0)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_classification_metrics_equal_scikit_learn(num_classes):
    """Random outputs with tied scores and, for 4 classes, one class never in
    the labels (its AUC is undefined) and one never predicted."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    from keraslm.evaluation import classification_metrics

    rng = np.random.default_rng(num_classes)
    n = 300
    true = rng.integers(0, num_classes - (num_classes > 2), n)  # class 3 absent
    logits = np.round(rng.normal(size=(n, num_classes)) + 1.5 * np.eye(num_classes)[true], 1)
    if num_classes > 2:
        logits[:, 2] -= 10  # class 2 is never predicted
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    report = classification_metrics(true, probabilities)
    predicted = probabilities.argmax(1)
    for average in ("macro", "micro", "weighted"):
        expected = precision_recall_fscore_support(true, predicted, average=average,
                                                   zero_division=0)[:3]
        assert [report[average][k] for k in ("precision", "recall", "f1")] == \
            pytest.approx(list(expected))
    if num_classes == 2:
        assert report["roc_auc"] == pytest.approx(roc_auc_score(true, probabilities[:, 1]))
    else:
        present = sorted(set(true))
        expected = [roc_auc_score(true == c, probabilities[:, c]) for c in present]
        assert report["roc_auc"] == pytest.approx(np.mean(expected))
        assert report["per_class"]["3"]["roc_auc"] is None
        assert report["per_class"]["2"]["precision"] == 0.0
    # The confusion matrix is scikit-learn's (rows true, columns predicted),
    # over every class, in the order of `labels`.
    np.testing.assert_array_equal(
        report["confusion_matrix"],
        confusion_matrix(true, predicted, labels=list(range(num_classes))))
    assert report["labels"] == [str(i) for i in range(num_classes)]
    assert sum(map(sum, report["confusion_matrix"])) == n
    with pytest.raises(ValueError, match=r"shape \[n, num_classes\]"):
        classification_metrics(true, probabilities[:10])


def test_confusion_matrix_rows_are_true_labels_columns_predicted():
    from keraslm.evaluation import classification_metrics

    report = classification_metrics([0, 1, 1, 2, 2, 2],
                                    np.eye(3)[[0, 0, 1, 2, 2, 1]], labels=["a", "b", "c"])
    assert report["labels"] == ["a", "b", "c"]
    assert report["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 1, 2]]
    names = ["a", "b", "c"]
    np.testing.assert_array_equal(report["confusion_matrix"], confusion_matrix(
        [names[i] for i in [0, 1, 1, 2, 2, 2]], [names[i] for i in [0, 0, 1, 2, 2, 1]],
        labels=names))
    assert report["micro"] == {"precision": 4 / 6, "recall": 4 / 6, "f1": 4 / 6}
