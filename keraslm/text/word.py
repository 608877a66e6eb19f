"""Word-level tokenizer with a vocabulary."""

import collections
import os

import tensorflow as tf

from keraslm.text.pretokenize import check_normalization, pretokenize
from keraslm.text.tokenizer import (
    VocabularyFileTokenizer, check_vocabulary,
    make_lookup_table, most_frequent, read_vocabulary_file,
)


class WordTokenizer(VocabularyFileTokenizer):
    """Word-level tokenizer: one id per word, `[UNK]` for the rest.

    Words come from the same splitting as `WordPieceTokenizer` (whitespace
    dropped, punctuation and CJK ideographs separate words). Detokenizing
    joins words with single spaces.

    Args:
        vocabulary: list of str, or the path of a one-token-per-line file,
            starting with the special tokens.
        lowercase: bool. Case-fold first. Defaults to `False`.
        normalization: str or None. Unicode form applied first. Defaults to
            `None`.
        split_on_cjk: bool. Defaults to `True`.

    Example:

    ```python
    tokenizer = keraslm.text.WordTokenizer.train(
        ["the cat sat", "the dog sat"], vocabulary_size=8)
    tokenizer.encode("the cat ran")    # [5, 7, 1]  ('ran' is [UNK])
    ```
    """

    type_name = "word"

    def __init__(self, vocabulary, *, lowercase=False, normalization=None,
                 split_on_cjk=True, name=None):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary_file(vocabulary)
        self._vocabulary = check_vocabulary(vocabulary, source="Word vocabulary")
        self.lowercase = lowercase
        self.normalization = check_normalization(normalization)
        self.split_on_cjk = split_on_cjk
        self._table = make_lookup_table(self._vocabulary, self.unk_id)
        self._tokens = tf.constant(self._vocabulary, dtype=tf.string)

    def get_vocabulary(self):
        return list(self._vocabulary)

    def pretokenize(self, strings):
        return pretokenize(strings, normalization=self.normalization,
                           lowercase=self.lowercase, split_on_cjk=self.split_on_cjk)

    def _tokenize_batch(self, strings):
        words = self.pretokenize(strings)
        return words.with_flat_values(self._table.lookup(words.flat_values))

    def _detokenize_batch(self, ids):
        tokens = ids.with_flat_values(tf.gather(self._tokens, ids.flat_values))
        return tf.strings.reduce_join(tokens, axis=-1, separator=" ")

    def normalize(self, texts):
        """The words of `texts` joined by single spaces."""
        single = isinstance(texts, str)
        words = self.pretokenize(tf.constant([texts] if single else list(texts)))
        joined = [x.decode("utf-8") for x in
                  tf.strings.reduce_join(words, axis=-1, separator=" ").numpy()]
        return joined[0] if single else joined

    def get_config(self):
        return {"lowercase": self.lowercase, "normalization": self.normalization,
                "split_on_cjk": self.split_on_cjk}

    @classmethod
    def train(cls, texts, vocabulary_size=20000, *, min_frequency=1,
              lowercase=False, normalization=None, split_on_cjk=True,
              progress=None):
        """Keeps the `vocabulary_size - 5` most frequent words of `texts`.

        One streaming pass: words are split by tensorflow-text in batches and
        counted in C (`collections.Counter`); only the counts are held.

        Args:
            texts: an iterable of str (a list, a generator, an open file).
            vocabulary_size: int or None. Total size with special tokens;
                None keeps every word seen `min_frequency` times.
            min_frequency: int. Defaults to `1`.
            progress: None, True (print) or a callable taking a line.
        """
        from keraslm.text.streaming import TextStream

        stream = TextStream(texts, progress=progress)
        counter = collections.Counter()
        probe = cls(list(_special()), lowercase=lowercase,
                    normalization=normalization, split_on_cjk=split_on_cjk)
        for batch in stream.batches():
            counter.update(probe.pretokenize(tf.constant(batch)).flat_values.numpy().tolist())
        counter = collections.Counter({k.decode("utf-8"): v for k, v in counter.items()})
        vocabulary = most_frequent(counter, vocabulary_size, min_frequency)
        stream.finished(f"kept {len(vocabulary):,} words")
        return cls(vocabulary, lowercase=lowercase, normalization=normalization,
                   split_on_cjk=split_on_cjk)


def _special():
    from keraslm.text.special_tokens import SPECIAL_TOKENS

    return SPECIAL_TOKENS
