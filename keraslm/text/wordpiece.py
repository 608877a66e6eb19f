"""WordPiece tokenizer trained on the user's corpus."""

import collections
import os

import tensorflow as tf
import tensorflow_text as tf_text

from keraslm.text import special_tokens as st
from keraslm.text.pretokenize import check_normalization, pretokenize
from keraslm.text.tokenizer import (
    TokenizerError, VocabularyFileTokenizer, check_vocabulary, read_vocabulary_file,
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
    tokenizer = keraslm.text.WordPieceTokenizer.train(lines, vocabulary_size=1000)
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
              suffix_indicator="##", max_bytes_per_word=100, progress=None):
        """Learns a WordPiece vocabulary from `texts` and returns the tokenizer.

        The words are this tokenizer's own (`pretokenize`, so the trainer
        sees exactly what the encoder splits), written to a scratch file in
        one streaming pass, then counted and merged by Hugging Face
        `tokenizers`' compiled `WordPieceTrainer`: the corpus is never held
        in memory, only its word counts; the same texts give the same
        vocabulary every time. Seconds for what
        keras-hub's `compute_word_piece_vocabulary` (pure Python) takes
        minutes or hours over (57.6 s against 2.0 s on the 4.4 MB of
        Shakespeare's plays). The keraslm special tokens are ids 0-4. Every
        character of the corpus is in the vocabulary alone, and as a `##`
        continuation if it was seen inside a word (so a Chinese corpus,
        whose characters are words of their own, spends no room on
        continuations no word needs); only characters never seen in
        training give `[UNK]`; the size is exactly `vocabulary_size` (the latest merges
        make room for those characters) unless the characters alone need
        more, or the corpus has fewer pieces to learn.

        Args:
            texts: an iterable of str (a list, a generator, an open file):
                the corpus, lines or documents.
            vocabulary_size: int. Size, special tokens included. Defaults
                to `8000`.
            progress: None, True (print) or a callable taking a line:
                reports texts read and the rate every few seconds.
            (other arguments: see the class.)

        Example:

        ```python
        with open("corpus.txt", encoding="utf-8") as lines:
            tokenizer = keraslm.text.WordPieceTokenizer.train(
                lines, vocabulary_size=8000, progress=True)
        ```
        """
        import tempfile

        import tokenizers

        from keraslm.text.streaming import TextStream, pretokenized

        if vocabulary_size <= st.NUM_SPECIAL_TOKENS:
            raise TokenizerError(
                f"`vocabulary_size` must be larger than the "
                f"{st.NUM_SPECIAL_TOKENS} special tokens. Received: "
                f"vocabulary_size={vocabulary_size}."
            )
        normalization = check_normalization(normalization)
        stream = TextStream(texts, progress=progress)

        def words(strings):
            return pretokenize(strings, normalization=normalization,
                               lowercase=lowercase, strip_accents=strip_accents,
                               split_on_cjk=split_on_cjk)

        with tempfile.TemporaryDirectory(prefix="keraslm-wordpiece-") as scratch:
            # First pass: the words, one text per line, to a scratch file, and
            # the alphabet. Knowing the alphabet first makes the learner
            # deterministic: given every continuation piece up front (in
            # sorted order), it no longer numbers them in hash-map order,
            # which breaks ties between equally frequent merges differently
            # from run to run (huggingface/tokenizers#1794).
            alphabet, inside = set(), set()
            path = os.path.join(scratch, "words.txt")
            with open(path, "w", encoding="utf-8") as f:
                for line in pretokenized(stream, words, alphabet, inside):
                    f.write(line)
                    f.write("\n")
            continuations = [suffix_indicator + char for char in sorted(inside)]
            learner = tokenizers.Tokenizer(tokenizers.models.WordPiece(
                unk_token=st.UNK, continuing_subword_prefix=suffix_indicator))
            # Words hold no ASCII whitespace; the learner's lines keep their "\n".
            learner.pre_tokenizer = tokenizers.pre_tokenizers.Split(
                tokenizers.Regex("[ \n]"), behavior="removed")
            trainer = tokenizers.trainers.WordPieceTrainer(
                vocab_size=vocabulary_size,
                special_tokens=list(st.SPECIAL_TOKENS) + continuations,
                continuing_subword_prefix=suffix_indicator, show_progress=False)
            # Second pass: the compiled learner reads the file itself.
            learner.train([path], trainer)
        learned = sorted(learner.get_vocab().items(), key=lambda item: item[1])
        vocabulary = _fit_alphabet([token for token, _ in learned], alphabet,
                                   inside, suffix_indicator, vocabulary_size)
        stream.finished(f"learned {len(vocabulary):,} WordPiece tokens")
        return cls(vocabulary, lowercase=lowercase, strip_accents=strip_accents,
                   normalization=normalization, split_on_cjk=split_on_cjk,
                   suffix_indicator=suffix_indicator,
                   max_bytes_per_word=max_bytes_per_word)


def _fit_alphabet(learned, alphabet, inside, suffix_indicator, vocabulary_size):
    """`learned` (special tokens first, then by merge order) with every
    character of `alphabet` alone and every one of `inside` as a
    continuation, trimmed of its latest merges to `vocabulary_size` (never
    below the special tokens and the characters)."""
    learned = list(collections.OrderedDict.fromkeys(learned))
    characters = set(alphabet)
    characters.update(suffix_indicator + char for char in inside)
    present = set(learned)
    missing = [token for token in sorted(characters) if token not in present]
    excess = len(learned) + len(missing) - vocabulary_size
    if excess > 0:
        keep = set(st.SPECIAL_TOKENS) | characters
        trimmed = []
        for token in reversed(learned):
            if excess > 0 and token not in keep:
                excess -= 1
                continue
            trimmed.append(token)
        learned = trimmed[::-1]
    return learned + missing
