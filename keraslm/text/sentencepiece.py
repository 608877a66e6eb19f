"""SentencePiece tokenizer (unigram or BPE) trained with the `sentencepiece` package."""

import io
import os

import tensorflow as tf
import tensorflow_text as tf_text

from keraslm.text import special_tokens as st
from keraslm.text.tokenizer import Tokenizer, TokenizerError

MODEL_FILENAME = "sentencepiece.model"
MODEL_TYPES = ("unigram", "bpe")


def _import_sentencepiece():
    try:
        import sentencepiece
    except ImportError as error:  # pragma: no cover - dependency of keras-hub
        raise ImportError(
            "SentencePieceTokenizer needs the `sentencepiece` package: "
            "pip install sentencepiece"
        ) from error
    return sentencepiece


class SentencePieceTokenizer(Tokenizer):
    """SentencePiece tokenizer (unigram language model or BPE).

    Runs in graphs through tensorflow-text's `SentencepieceTokenizer`. Text is
    normalized by the model's rule (NFKC and whitespace collapsing by
    default), so `decode(encode(x)) == normalize(x)`. Trained models reserve
    the keraslm special tokens at ids 0-4.

    Args:
        proto: bytes (a serialized model) or the path of a `.model` file.

    Example:

    ```python
    lines = keraslm.data.read_text("../shared/data/shakespeare/train.txt")
    tokenizer = keraslm.text.SentencePieceTokenizer.train(
        lines[:5000], vocabulary_size=1000, model_type="bpe")
    tokenizer.decode(tokenizer.encode("To be, or not to be"))
    ```

    References:
        - [Kudo and Richardson, 2018](https://arxiv.org/abs/1808.06226)
        - [Kudo, 2018](https://arxiv.org/abs/1804.10959) (unigram)
    """

    type_name = "sentencepiece"

    def __init__(self, proto, name=None):
        super().__init__(name=name)
        if isinstance(proto, (str, os.PathLike)):
            with open(proto, "rb") as f:
                proto = f.read()
        if not isinstance(proto, bytes):
            raise TokenizerError(
                f"`proto` must be the bytes of a SentencePiece model or a file "
                f"path. Received: {type(proto).__name__}."
            )
        self._proto = proto
        spm = _import_sentencepiece()
        self._processor = spm.SentencePieceProcessor(model_proto=proto)
        vocabulary = [self._processor.id_to_piece(i)
                      for i in range(self._processor.get_piece_size())]
        expected = list(st.SPECIAL_TOKENS)
        if vocabulary[: st.NUM_SPECIAL_TOKENS] != expected:
            raise TokenizerError(
                f"This SentencePiece model does not reserve the keraslm special "
                f"tokens {expected} at ids 0-4. Received first pieces: "
                f"{vocabulary[: st.NUM_SPECIAL_TOKENS]}. Train it with "
                f"`SentencePieceTokenizer.train`."
            )
        self._vocabulary = vocabulary
        self._sp = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)

    @property
    def model_type(self) -> str:
        spm = _import_sentencepiece()
        from sentencepiece import sentencepiece_model_pb2

        del spm
        model = sentencepiece_model_pb2.ModelProto()
        model.ParseFromString(self._proto)
        return {1: "unigram", 2: "bpe", 3: "word", 4: "char"}[model.trainer_spec.model_type]

    def get_vocabulary(self):
        return list(self._vocabulary)

    def _tokenize_batch(self, strings):
        return self._sp.tokenize(strings)

    def _detokenize_batch(self, ids):
        return self._sp.detokenize(ids)

    def normalize(self, texts):
        """`texts` after the model's normalization rule, as decoding returns them."""
        if isinstance(texts, str):
            return self._processor.normalize(texts).replace("\u2581", " ").strip()
        return [self.normalize(t) for t in texts]

    def save_assets(self, directory):
        with open(os.path.join(directory, MODEL_FILENAME), "wb") as f:
            f.write(self._proto)

    @classmethod
    def from_directory(cls, directory, config):
        return cls(os.path.join(directory, MODEL_FILENAME), **config)

    @classmethod
    def train(cls, texts, vocabulary_size=8000, *, model_type="unigram",
              character_coverage=1.0, normalization="nmt_nfkc",
              max_sentence_length=16384, input_sentence_size=2_000_000, seed=0,
              num_threads=2, progress=None, **trainer_options):
        """Trains a SentencePiece model on `texts` and returns the tokenizer.

        The compiled SentencePiece trainer reads `texts` as a stream; of a
        corpus larger than `input_sentence_size` sentences it keeps a
        uniform sample of that many (reservoir sampling), so memory stays
        bounded however large the corpus.

        Args:
            texts: an iterable of str (a list, a generator, an open file).
                Each string is one training sentence.
            vocabulary_size: int. Exact size, special tokens included.
                Defaults to `8000`.
            model_type: str. `"unigram"` (default) or `"bpe"`.
            character_coverage: float. Share of characters covered; use
                `0.9995` for large CJK alphabets. Defaults to `1.0`.
            normalization: str. SentencePiece rule: `"nmt_nfkc"` (default),
                `"nfkc"`, `"identity"`, ...
            max_sentence_length: int. Longer sentences (in bytes) are skipped
                by the trainer. Defaults to `16384`.
            input_sentence_size: int. Learn from a uniform sample of at most
                this many sentences (0 = all of them, held in memory).
                Defaults to `2_000_000`.
            seed: int. Seed for the sampling.
            progress: None, True (print) or a callable taking a line:
                reports sentences read and the rate every few seconds.
            **trainer_options: any other `SentencePieceTrainer` option.
        """
        from keraslm.text.streaming import TextStream

        spm = _import_sentencepiece()
        stream = TextStream(texts, progress=progress)
        if model_type not in MODEL_TYPES:
            raise TokenizerError(
                f"Unknown SentencePiece model type. Received: model_type="
                f"{model_type!r}. Expected one of {list(MODEL_TYPES)}."
            )
        if vocabulary_size <= st.NUM_SPECIAL_TOKENS:
            raise TokenizerError(
                f"`vocabulary_size` must be larger than the "
                f"{st.NUM_SPECIAL_TOKENS} special tokens. Received: "
                f"vocabulary_size={vocabulary_size}."
            )
        spm.set_random_generator_seed(seed)
        model = io.BytesIO()
        sentences = (t for t in stream if t.strip())
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences,
                model_writer=model,
                vocab_size=vocabulary_size,
                model_type=model_type,
                character_coverage=character_coverage,
                normalization_rule_name=normalization,
                max_sentence_length=max_sentence_length,
                input_sentence_size=input_sentence_size,
                shuffle_input_sentence=True,
                num_threads=num_threads,
                pad_id=st.PAD_ID, unk_id=st.UNK_ID, bos_id=st.BOS_ID,
                eos_id=st.EOS_ID, pad_piece=st.PAD, unk_piece=st.UNK,
                bos_piece=st.BOS, eos_piece=st.EOS,
                control_symbols=[st.MASK],
                minloglevel=2,
                **trainer_options,
            )
        except TokenizerError:
            raise
        except RuntimeError as error:
            raise TokenizerError(
                f"SentencePiece training failed: {error}. (vocabulary_size="
                f"{vocabulary_size}; a vocabulary larger than the corpus "
                f"supports is the usual cause: lower it, or pass "
                f"hard_vocab_limit=False.)"
            ) from error
        stream.finished(f"learned {vocabulary_size:,} SentencePiece {model_type} pieces")
        return cls(model.getvalue())
