"""Classical references the learned models are measured against
(`examples/defaults.py` and `tests/training/test_auto_defaults.py`):
TF-IDF + logistic regression (scikit-learn) for classification, and xz as a
model of text for language modelling.

Example:

```python
from keraslm.evaluation import baselines

baselines.tfidf_logistic_regression("reviews/train.csv", "reviews/test.csv")  # accuracy
baselines.xz_bits_per_character("shakespeare/train.txt", "shakespeare/valid.txt")
```
"""

import csv
import lzma


def tfidf_logistic_regression(train_path, test_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def rows(path):
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    train, test = rows(train_path), rows(test_path)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=4, max_iter=2000).fit(
        vectorizer.fit_transform(r["text"] for r in train), [r["label"] for r in train])
    predicted = classifier.predict(vectorizer.transform(r["text"] for r in test))
    return sum(p == r["label"] for p, r in zip(predicted, test)) / len(test)


def xz_bits_per_character(train_path, valid_path):
    """xz as a model of the validation text given the training text: the
    bits its compressed size grows by when the validation text is appended,
    per character of it."""
    def size(text):
        return len(lzma.compress(text.encode("utf-8"), format=lzma.FORMAT_XZ,
                                 preset=9 | lzma.PRESET_EXTREME))

    with open(train_path, encoding="utf-8") as handle:
        train = handle.read()
    with open(valid_path, encoding="utf-8") as handle:
        valid = handle.read()
    return (size(train + valid) - size(train)) * 8 / len(valid)
