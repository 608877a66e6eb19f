"""Text cleaning and simple augmentation, in plain Python.

Cleaning runs once on the texts read from files, before tokenization:

```python
cleaner = keraslm.text.TextCleaner(strip_html=True, normalization="NFKC",
                                   lowercase=True, stop_words="english")
cleaner("I <b>LOVE</b> this ﬁne tea!<br />")   # 'love fine tea !'
```
"""

import html
import random
import re
import unicodedata

ENGLISH_STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no
nor not of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these
they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves
""".split())
"""A common English stop-word list (function words only)."""

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_BREAK = re.compile(r"<\s*(br|p|div|li|tr|h[1-6])\b[^>]*/?>", re.I)
_TAG = re.compile(r"<[^<>]+>")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SPACES = re.compile(r"[^\S\n]+")
_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


def strip_html(text: str) -> str:
    """Removes HTML tags, comments, scripts and styles, and unescapes entities.

    Line-breaking tags (`<br>`, `<p>`, ...) become spaces, so words on both
    sides stay apart.

    Example:

    ```python
    strip_html("Great<br />tea &amp; <i>cheap</i>")   # 'Great tea & cheap'
    ```
    """
    text = _COMMENT.sub("", text)
    text = _SCRIPT_OR_STYLE.sub(" ", text)
    text = _BREAK.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    return _SPACES.sub(" ", text).strip()


def remove_stop_words(text: str, stop_words=ENGLISH_STOP_WORDS) -> str:
    """Drops words in `stop_words` (compared lower-cased); keeps punctuation.

    Example:

    ```python
    remove_stop_words("This is not a good tea")   # 'good tea'
    ```
    """
    words = _WORD.findall(text)
    return " ".join(w for w in words if w.lower() not in stop_words)


class TextCleaner:
    """Configurable cleaning: HTML, Unicode normalization, case, stop words.

    Steps run in this order: HTML stripping, Unicode normalization,
    lowercasing, stop-word removal, whitespace collapsing.

    Args:
        strip_html: bool. Remove tags and unescape entities. Defaults to `False`.
        normalization: str or None. `"NFKC"` (recommended: full-width forms,
            ligatures and compatibility characters to their plain form),
            `"NFC"`, `"NFD"`, `"NFKD"` or None. Defaults to `None`.
        lowercase: bool. Defaults to `False`.
        stop_words: None, `"english"`, or a collection of words to drop.
            Defaults to `None`.
        collapse_whitespace: bool. Runs of spaces/tabs to one space and strip
            the ends. Defaults to `True`.

    Example:

    ```python
    cleaner = keraslm.text.TextCleaner(strip_html=True, lowercase=True)
    cleaner("Great<br />TEA")            # 'great tea'
    cleaner(["<p>A</p>", "B"])           # ['a', 'b']
    ```
    """

    def __init__(self, *, strip_html=False, normalization=None, lowercase=False,
                 stop_words=None, collapse_whitespace=True):
        if normalization not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(
                f"Unknown Unicode normalization. Received: normalization="
                f"{normalization!r}. Expected one of None, 'NFC', 'NFKC', "
                f"'NFD', 'NFKD'."
            )
        if stop_words == "english":
            stop_words = ENGLISH_STOP_WORDS
        elif isinstance(stop_words, str):
            raise ValueError(
                f"Unknown stop-word list. Received: stop_words={stop_words!r}. "
                f"Expected None, 'english', or a collection of words."
            )
        self.strip_html = strip_html
        self.normalization = normalization
        self.lowercase = lowercase
        self.stop_words = frozenset(w.lower() for w in stop_words) if stop_words else None
        self.collapse_whitespace = collapse_whitespace

    def clean(self, text: str) -> str:
        """Cleans one string."""
        if self.strip_html:
            text = strip_html(text)
        if self.normalization:
            text = unicodedata.normalize(self.normalization, text)
        if self.lowercase:
            text = text.lower()
        if self.stop_words:
            text = remove_stop_words(text, self.stop_words)
        if self.collapse_whitespace:
            text = _SPACES.sub(" ", text).strip()
        return text

    def __call__(self, texts):
        if isinstance(texts, str):
            return self.clean(texts)
        return [self.clean(t) for t in texts]

    def get_config(self) -> dict:
        return {
            "strip_html": self.strip_html,
            "normalization": self.normalization,
            "lowercase": self.lowercase,
            "stop_words": sorted(self.stop_words) if self.stop_words else None,
            "collapse_whitespace": self.collapse_whitespace,
        }


def random_deletion(text: str, rate=0.1, rng=None) -> str:
    """Deletes each word with probability `rate` (never all of them).

    Example:

    ```python
    random_deletion("the tea was very good", rate=0.3, rng=random.Random(0))
    ```
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}.")
    rng = rng or random.Random()
    words = text.split()
    if len(words) <= 1:
        return text
    kept = [w for w in words if rng.random() >= rate]
    if not kept:
        kept = [rng.choice(words)]
    return " ".join(kept)


def random_swap(text: str, num_swaps=1, rng=None) -> str:
    """Swaps two random words, `num_swaps` times.

    Example:

    ```python
    random_swap("the tea was good", num_swaps=1, rng=random.Random(0))
    ```
    """
    if num_swaps < 0:
        raise ValueError(f"`num_swaps` must be >= 0. Received: num_swaps={num_swaps}.")
    rng = rng or random.Random()
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(num_swaps):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def augment(texts, labels, *, copies=1, deletion_rate=0.1, num_swaps=1, seed=0):
    """Returns the originals plus `copies` augmented variants of each example.

    Each variant applies `random_deletion` then `random_swap`; labels are
    repeated. For classification training data only (never evaluation).

    Args:
        texts: list of str.
        labels: list. Same length as `texts`.
        copies: int. Variants per example. Defaults to `1`.
        deletion_rate: float. Defaults to `0.1`.
        num_swaps: int. Defaults to `1`.
        seed: int. Defaults to `0`.

    Returns:
        `(texts, labels)`, `(copies + 1) * len(texts)` long.

    Example:

    ```python
    texts, labels = augment(["good tea here"], ["great"], copies=2, seed=1)
    len(texts)   # 3
    ```
    """
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(
            f"`texts` and `labels` must have the same length. Received: "
            f"{len(texts)} texts and {len(labels)} labels."
        )
    rng = random.Random(seed)
    out_texts, out_labels = list(texts), list(labels)
    for _ in range(copies):
        for text, label in zip(texts, labels):
            variant = random_swap(random_deletion(text, deletion_rate, rng), num_swaps, rng)
            out_texts.append(variant)
            out_labels.append(label)
    return out_texts, out_labels
