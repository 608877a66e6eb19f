"""Unicode character tokenizer (the default for Chinese)."""

import collections
import os

import tensorflow as tf

from keraslm.text.pretokenize import check_normalization, normalize_strings
from keraslm.text.tokenizer import (
    Tokenizer, TokenizerError, check_vocabulary, make_lookup_table, most_frequent,
)

VOCABULARY_FILENAME = "vocabulary.json"


class CharacterTokenizer(Tokenizer):
    """One id per Unicode character, from a vocabulary of characters.

    The sensible default for Chinese (no spaces between words) and for
    character-level language models. Nothing is dropped: spaces, newlines and
    punctuation are characters too, so `decode(encode(x)) == x` exactly when
    every character of `x` is in the vocabulary (`normalization=None`,
    `lowercase=False`, the defaults). Unknown characters become `[UNK]`; bytes
    that are not valid UTF-8 become U+FFFD.

    Args:
        vocabulary: list of single-character strings (after the special
            tokens), or the path of a `vocabulary.json` list.
        lowercase: bool. Defaults to `False`.
        normalization: str or None. Unicode form applied first (`"NFKC"`
            maps full-width punctuation to ASCII). Defaults to `None`.

    Example:

    ```python
    poems = keraslm.data.read_text("../shared/data/tang_poems/test.txt")
    tokenizer = keraslm.text.CharacterTokenizer.train(poems)
    tokenizer.decode(tokenizer.encode(poems[0])) == poems[0]    # True
    ```
    """

    type_name = "character"

    def __init__(self, vocabulary, *, lowercase=False, normalization=None, name=None):
        super().__init__(name=name)
        if isinstance(vocabulary, (str, os.PathLike)):
            import json

            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = json.load(f)
        self._vocabulary = check_vocabulary(vocabulary, source="Character vocabulary")
        for i, token in enumerate(self._vocabulary[5:], start=5):
            if len(token) != 1:
                raise TokenizerError(
                    f"Character vocabulary: token {i} is not a single character. "
                    f"Received: {token!r} (length {len(token)}). Expected one "
                    f"Unicode character per entry."
                )
        self.lowercase = lowercase
        self.normalization = check_normalization(normalization)
        self._table = make_lookup_table(self._vocabulary, self.unk_id)
        self._tokens = tf.constant(self._vocabulary, dtype=tf.string)

    def get_vocabulary(self):
        return list(self._vocabulary)

    def _tokenize_batch(self, strings):
        strings = normalize_strings(strings, normalization=self.normalization,
                                    lowercase=self.lowercase)
        chars = tf.strings.unicode_split(strings, "UTF-8", errors="replace")
        return chars.with_flat_values(self._table.lookup(chars.flat_values))

    def _detokenize_batch(self, ids):
        tokens = ids.with_flat_values(tf.gather(self._tokens, ids.flat_values))
        return tf.strings.reduce_join(tokens, axis=-1)

    def normalize(self, texts):
        if not (self.normalization or self.lowercase):
            return texts
        single = isinstance(texts, str)
        out = normalize_strings(tf.constant([texts] if single else list(texts)),
                                normalization=self.normalization,
                                lowercase=self.lowercase).numpy()
        out = [x.decode("utf-8") for x in out]
        return out[0] if single else out

    def get_config(self):
        return {"lowercase": self.lowercase, "normalization": self.normalization}

    def save_assets(self, directory):
        import json

        # JSON, not one per line: newline and other whitespace are characters.
        with open(os.path.join(directory, VOCABULARY_FILENAME), "w",
                  encoding="utf-8") as f:
            json.dump(self._vocabulary, f, ensure_ascii=False, indent=0)

    @classmethod
    def from_directory(cls, directory, config):
        return cls(os.path.join(directory, VOCABULARY_FILENAME), **config)

    @classmethod
    def train(cls, texts, vocabulary_size=None, *, min_frequency=1,
              lowercase=False, normalization=None, progress=None):
        """Collects the characters of `texts`, most frequent first.

        One streaming pass, counting in C (`collections.Counter` over each
        batch's normalized text): only the counts are held.

        Args:
            texts: an iterable of str (a list, a generator, an open file).
            vocabulary_size: int or None. Total size with special tokens;
                None (the default) keeps every character.
            min_frequency: int. Defaults to `1`.
            progress: None, True (print) or a callable taking a line.
        """
        from keraslm.text.streaming import TextStream

        stream = TextStream(texts, progress=progress)
        probe = cls(list(_special()), lowercase=lowercase, normalization=normalization)
        counter = collections.Counter()
        for batch in stream.batches():
            counter.update("".join(probe.normalize(batch)))
        vocabulary = most_frequent(counter, vocabulary_size, min_frequency)
        stream.finished(f"collected {len(vocabulary):,} characters")
        return cls(vocabulary, lowercase=lowercase, normalization=normalization)


def _special():
    from keraslm.text.special_tokens import SPECIAL_TOKENS

    return SPECIAL_TOKENS
