"""Word splitting shared by the WordPiece and word-level tokenizers.

BERT-style: split on whitespace and control characters (dropped) and on
punctuation and CJK ideographs (each kept as its own word), after optional
Unicode normalization, accent stripping and case folding. The rules are the
ones keras-hub's `WordPieceTokenizer` applies, so the same vocabulary gives
the same ids in both.
"""

import tensorflow as tf
import tensorflow_text as tf_text

WHITESPACE = r"\s|\p{Cc}|\p{Cf}"
PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
CJK = "|".join([
    r"[\x{4E00}-\x{9FFF}]", r"[\x{3400}-\x{4DBF}]", r"[\x{20000}-\x{2A6DF}]",
    r"[\x{2A700}-\x{2B73F}]", r"[\x{2B740}-\x{2B81F}]", r"[\x{2B820}-\x{2CEAF}]",
    r"[\x{F900}-\x{FAFF}]", r"[\x{2F800}-\x{2FA1F}]",
])

NORMALIZATION_FORMS = (None, "NFC", "NFKC", "NFD", "NFKD")


def check_normalization(normalization):
    if normalization not in NORMALIZATION_FORMS:
        raise ValueError(
            f"Unknown Unicode normalization. Received: normalization="
            f"{normalization!r}. Expected one of {list(NORMALIZATION_FORMS)}."
        )
    return normalization


def normalize_strings(strings, *, normalization=None, lowercase=False,
                      strip_accents=False):
    """Applies Unicode normalization, accent stripping and case folding."""
    if normalization:
        strings = tf_text.normalize_utf8(strings, normalization)
    if strip_accents:
        strings = tf_text.normalize_utf8(strings, "NFD")
        strings = tf.strings.regex_replace(strings, r"\p{Mn}", "")
    if lowercase:
        strings = tf_text.case_fold_utf8(strings)
    return strings


def split_words(strings, *, split_on_cjk=True):
    """Splits a 1-D string tensor into a `[batch, words]` ragged tensor."""
    if split_on_cjk:
        delimiters = "|".join([WHITESPACE, PUNCTUATION, CJK])
        keep = "|".join([PUNCTUATION, CJK])
    else:
        delimiters = "|".join([WHITESPACE, PUNCTUATION])
        keep = PUNCTUATION
    return tf_text.regex_split(strings, delim_regex_pattern=delimiters,
                               keep_delim_regex_pattern=keep)


def pretokenize(strings, *, normalization=None, lowercase=False,
                strip_accents=False, split_on_cjk=True):
    """Normalizes and splits a 1-D string tensor into ragged words.

    Example:

    ```python
    pretokenize(tf.constant(["Hello, world!"])).to_list()
    # [[b'Hello', b',', b'world', b'!']]
    ```
    """
    strings = normalize_strings(strings, normalization=normalization,
                                lowercase=lowercase, strip_accents=strip_accents)
    return split_words(strings, split_on_cjk=split_on_cjk)
