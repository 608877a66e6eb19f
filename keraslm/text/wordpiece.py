"""WordPiece tokenizer trained on the user's corpus."""

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

from keraslm.text import special_tokens as st
from keraslm.text.pretokenize import check_normalization, pretokenize
from keraslm.text.tokenizer import (
    TokenizerError, VocabularyFileTokenizer, batched, check_texts, check_vocabulary,
    read_vocabulary_file,
)


class WordPieceTokenizer(VocabularyFileTokenizer):
    """WordPiece (BERT) tokenizer on tensorflow-text's `FastWordpieceTokenizer`.

    Text is normalized and split into words (whitespace dropped, punctuation
    and CJK ideographs kept as words), then each word is split greedily into
    the longest vocabulary pieces, continuation pieces prefixed with `##`.
    A word that cannot be covered (or is longer than `max_bytes_per_word`)
    becomes `[UNK]`. Given the same vocabulary and options it produces the
    same ids as `keras_hub.tokenizers.WordPieceTokenizer`. Detokenizing joins
    words with single spaces, so `decode(encode(x)) == normalize(x)` when no
    word is unknown.

    Args:
        vocabulary: list of str, or the path of a one-token-per-line file.
            Must start with the special tokens `[PAD] [UNK] [CLS] [SEP] [MASK]`.
        lowercase: bool. Case-fold the text first. Defaults to `False`.
        strip_accents: bool. Remove combining accents. Defaults to `False`.
        normalization: str or None. Unicode form applied first (`"NFKC"`...).
            Defaults to `None`.
        split_on_cjk: bool. Make every CJK ideograph its own word. Defaults
            to `True`.
        suffix_indicator: str. Prefix of continuation pieces. Defaults to `"##"`.
        max_bytes_per_word: int. Longer words become `[UNK]`. Defaults to `100`.

    Example:

    ```python
    lines = keraslm.data.read_text("../shared/data/shakespeare/train.txt")
    tokenizer = keraslm.text.WordPieceTokenizer.train(lines[:5000],
                                                      vocabulary_size=1000)
    ids = tokenizer.encode("To be, or not to be")
    tokenizer.decode(ids)          # 'To be , or not to be'
    tokenizer.save("run/tokenizer")
    ```

    References:
        - [Wu et al., 2016](https://arxiv.org/abs/1609.08144)
        - [Song et al., 2020](https://arxiv.org/abs/2012.15524)
    """

    type_name = "wordpiece"

    def __init__(self, vocabulary, *, lowercase=False, strip_accents=False,
                 normalization=None, split_on_cjk=True, suffix_indicator="##",
                 max_bytes_per_word=100, name=None):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary_file(vocabulary)
        self._vocabulary = check_vocabulary(vocabulary, source="WordPiece vocabulary")
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.normalization = check_normalization(normalization)
        self.split_on_cjk = split_on_cjk
        self.suffix_indicator = suffix_indicator
        self.max_bytes_per_word = max_bytes_per_word
        self._fast_wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self._vocabulary,
            suffix_indicator=suffix_indicator,
            max_bytes_per_word=max_bytes_per_word,
            token_out_type=tf.int32,
            unknown_token=st.UNK,
            no_pretokenization=True,
            support_detokenization=True,
        )

    def get_vocabulary(self):
        return list(self._vocabulary)

    def pretokenize(self, strings):
        """A 1-D string tensor to a `[batch, words]` ragged string tensor."""
        return pretokenize(strings, normalization=self.normalization,
                           lowercase=self.lowercase,
                           strip_accents=self.strip_accents,
                           split_on_cjk=self.split_on_cjk)

    def _tokenize_batch(self, strings):
        return self._fast_wordpiece.tokenize(self.pretokenize(strings)).merge_dims(-2, -1)

    def _detokenize_batch(self, ids):
        return self._fast_wordpiece.detokenize(ids)

    def normalize(self, texts):
        """The words of `texts` joined by single spaces (what decoding gives)."""
        single = isinstance(texts, str)
        words = self.pretokenize(tf.constant([texts] if single else list(texts)))
        joined = tf.strings.reduce_join(words, axis=-1, separator=" ").numpy()
        joined = [x.decode("utf-8") for x in joined]
        return joined[0] if single else joined

    def get_config(self):
        return {
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "normalization": self.normalization,
            "split_on_cjk": self.split_on_cjk,
            "suffix_indicator": self.suffix_indicator,
            "max_bytes_per_word": self.max_bytes_per_word,
        }

    @classmethod
    def train(cls, texts, vocabulary_size=8000, *, lowercase=False,
              strip_accents=False, normalization=None, split_on_cjk=True,
              suffix_indicator="##", max_bytes_per_word=100, batch_size=1000):
        """Learns a WordPiece vocabulary from `texts` and returns the tokenizer.

        Uses keras-hub's `compute_word_piece_vocabulary` (tensorflow-text's
        BERT vocabulary learner), with the keraslm special tokens reserved at
        ids 0-4. The learner searches a frequency threshold, so the size it
        reaches is close to, not exactly, `vocabulary_size`. Every character
        of the corpus is then added (alone and as a `##` continuation) if the
        learner left it out, so only characters never seen in training can
        give `[UNK]`.

        Args:
            texts: list of str. The corpus (lines or documents).
            vocabulary_size: int. Target size, special tokens included.
                Defaults to `8000`.
            batch_size: int. Strings per batch while counting words.
            (other arguments: see the class.)
        """
        import keras_hub

        texts = check_texts(texts)
        if vocabulary_size <= st.NUM_SPECIAL_TOKENS:
            raise TokenizerError(
                f"`vocabulary_size` must be larger than the "
                f"{st.NUM_SPECIAL_TOKENS} special tokens. Received: "
                f"vocabulary_size={vocabulary_size}."
            )
        normalization = check_normalization(normalization)
        dataset = batched(texts, batch_size)
        if normalization:
            dataset = dataset.map(lambda x: tf_text.normalize_utf8(x, normalization))
        vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
            dataset,
            vocabulary_size,
            lowercase=lowercase,
            strip_accents=strip_accents,
            split_on_cjk=split_on_cjk,
            suffix_indicator=suffix_indicator,
            reserved_tokens=list(st.SPECIAL_TOKENS),
        )
        vocabulary = _dedupe(vocabulary)
        vocabulary += _missing_alphabet(vocabulary, texts, normalization, lowercase,
                                        strip_accents, split_on_cjk, suffix_indicator,
                                        batch_size)
        return cls(vocabulary, lowercase=lowercase, strip_accents=strip_accents,
                   normalization=normalization, split_on_cjk=split_on_cjk,
                   suffix_indicator=suffix_indicator,
                   max_bytes_per_word=max_bytes_per_word)


def _dedupe(tokens):
    return list(collections.OrderedDict.fromkeys(tokens))


def _missing_alphabet(vocabulary, texts, normalization, lowercase, strip_accents,
                      split_on_cjk, suffix_indicator, batch_size):
    """Characters of the corpus (and their `##` forms) absent from `vocabulary`."""
    alphabet = set()
    for batch in batched(texts, batch_size):
        words = pretokenize(batch, normalization=normalization, lowercase=lowercase,
                            strip_accents=strip_accents, split_on_cjk=split_on_cjk)
        joined = tf.strings.reduce_join(words.flat_values).numpy()
        alphabet.update(joined.decode("utf-8", errors="replace"))
    present = set(vocabulary)
    missing = []
    for char in sorted(alphabet):
        for token in (char, suffix_indicator + char):
            if token not in present:
                missing.append(token)
    return missing
