"""The tokenizer base class, saving and loading.

Every keraslm tokenizer maps strings to integer ids inside TensorFlow graphs
(so it runs in `tf.data` and can be exported with a model) and back, shares
the special tokens of `keraslm.text.special_tokens`, and saves itself to a
directory that a run directory can hold:

```
tokenizer/
  tokenizer.json     {"type": "wordpiece", "config": {...}, "special_tokens": {...}}
  vocabulary.txt     one token per line (or sentencepiece.model)
```
"""

import json
import os

import numpy as np
import tensorflow as tf

from keraslm.text import special_tokens as st

CONFIG_FILENAME = "tokenizer.json"
FORMAT_VERSION = 1


class TokenizerError(ValueError):
    """A tokenizer was built, trained, saved or loaded with bad input."""


class Tokenizer(tf.Module):
    """Base class of keraslm tokenizers.

    Subclasses implement `_tokenize_batch` (a rank-1 string tensor to a
    `tf.RaggedTensor` of int32 ids), `_detokenize_batch` (the reverse),
    `get_vocabulary`, `get_config`, `save_assets` and `from_directory`, and
    may implement `train` and `normalize`.

    Calling a tokenizer is `tokenize`: a scalar string gives a 1-D int32
    tensor, a batch of strings gives a `tf.RaggedTensor` of shape
    `[batch, None]`. `encode`/`decode` are the plain-Python equivalents.

    Example:

    ```python
    tokenizer = keraslm.text.CharacterTokenizer.train(["hello world"])
    ids = tokenizer.encode("hello")           # [.., .., .., .., ..]
    tokenizer.decode(ids)                     # 'hello'
    tokenizer(["hi", "low"])                  # tf.RaggedTensor
    ```
    """

    type_name = None
    """str. The registry name (`"wordpiece"`), written to `tokenizer.json`."""

    # ------------------------------------------------------------------ ids
    @property
    def vocabulary_size(self) -> int:
        """int. Number of ids, special tokens included."""
        return len(self.get_vocabulary())

    def get_vocabulary(self) -> list:
        """Returns the list of tokens, index = id."""
        raise NotImplementedError

    def id_to_token(self, id) -> str:
        """Returns the token string for `id`."""
        vocabulary = self.get_vocabulary()
        if not 0 <= int(id) < len(vocabulary):
            raise TokenizerError(
                f"Token id out of range. Received: id={id}. Expected an "
                f"integer in [0, {len(vocabulary)})."
            )
        return vocabulary[int(id)]

    def token_to_id(self, token) -> int:
        """Returns the id of `token`, or `unk_id` if it is not in the vocabulary."""
        index = self._token_index()
        return index.get(token, self.unk_id)

    def _token_index(self):
        if getattr(self, "_index_cache", None) is None:
            self._index_cache = {t: i for i, t in enumerate(self.get_vocabulary())}
        return self._index_cache

    pad_id = st.PAD_ID
    unk_id = st.UNK_ID
    bos_id = cls_id = st.BOS_ID
    eos_id = sep_id = st.EOS_ID
    mask_id = st.MASK_ID

    @property
    def special_token_ids(self) -> dict:
        """dict. `{"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}`."""
        return {"pad": self.pad_id, "unk": self.unk_id, "cls": self.cls_id,
                "sep": self.sep_id, "mask": self.mask_id}

    # ------------------------------------------------------------- tokenize
    def _tokenize_batch(self, strings):
        raise NotImplementedError

    def _detokenize_batch(self, ids):
        raise NotImplementedError

    def tokenize_words(self, words):
        """Tokenizes pre-split words: `[batch, words]` strings to `[batch, words, pieces]`.

        Each word is tokenized on its own; a word that gives no id at all
        (only whitespace) maps to `[UNK]`, so every word keeps at least one
        id (token classification relies on it).

        Example:

        ```python
        pieces = tokenizer.tokenize_words(tf.ragged.constant([["Atlanta's", "jury"]]))
        ```
        """
        if isinstance(words, tf.Tensor):
            words = tf.RaggedTensor.from_tensor(words)
        pieces = ensure_nonempty(self._tokenize_batch(words.flat_values), self.unk_id)
        return words.with_flat_values(pieces)

    def tokenize(self, inputs):
        """Maps strings to int32 ids.

        Args:
            inputs: a Python string, a list of strings, or a string tensor of
                rank 0 or 1.

        Returns:
            A 1-D int32 tensor for a single string, a `tf.RaggedTensor` of
            shape `[batch, None]` for a batch.
        """
        inputs = _as_string_tensor(inputs)
        if inputs.shape.rank == 0:
            return self._tokenize_batch(tf.expand_dims(inputs, 0))[0]
        if inputs.shape.rank != 1:
            raise TokenizerError(
                f"`tokenize` expects a string or a 1-D batch of strings. "
                f"Received a tensor of shape {inputs.shape}."
            )
        return self._tokenize_batch(inputs)

    __call__ = tokenize

    def detokenize(self, ids, skip_special_tokens=True):
        """Maps ids back to strings.

        Args:
            ids: a 1-D sequence of ids (one string) or a 2-D dense or ragged
                batch (one string per row).
            skip_special_tokens: bool. Drop `[PAD]`, `[CLS]`, `[SEP]` and
                `[MASK]` before joining. Defaults to `True`.

        Returns:
            A scalar string tensor, or a 1-D string tensor for a batch.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        rank = ids.shape.rank
        if rank == 1:
            ids = tf.RaggedTensor.from_tensor(tf.expand_dims(ids, 0))
        elif not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        if skip_special_tokens:
            drop = tf.constant([self.pad_id, self.cls_id, self.sep_id, self.mask_id])
            flat = ids.flat_values
            keep = tf.reduce_all(tf.not_equal(flat[:, None], drop[None, :]), axis=1)
            ids = tf.ragged.boolean_mask(ids, ids.with_flat_values(keep))
        outputs = self._detokenize_batch(ids)
        return outputs[0] if rank == 1 else outputs

    def encode(self, text) -> list:
        """Plain-Python `tokenize`: a string to a list of ints (or a list of lists)."""
        if isinstance(text, str):
            return self.tokenize(text).numpy().tolist()
        return self.tokenize(list(text)).to_list()

    def decode(self, ids, skip_special_tokens=True):
        """Plain-Python `detokenize`: ids to a string (or a list of strings)."""
        ids = list(ids)
        batched = bool(ids) and not np.isscalar(ids[0])
        if not ids:
            return ""
        if batched:
            outputs = self.detokenize(tf.ragged.constant(ids, dtype=tf.int32),
                                      skip_special_tokens)
            return [_to_text(x) for x in outputs.numpy()]
        return _to_text(self.detokenize(ids, skip_special_tokens).numpy())

    def normalize(self, texts):
        """Returns `texts` as `decode(encode(texts))` gives them back.

        Tokenizers that lose information (lowercasing, whitespace) document
        the canonical form here; the default is the identity.
        """
        return texts

    def unknown_rate(self, texts, batch_size=1024) -> float:
        """Fraction of the ids of `texts` that are `[UNK]`.

        Example:

        ```python
        tokenizer.unknown_rate(["an unseen word"])     # 0.0 .. 1.0
        ```
        """
        unknown = total = 0
        dataset = tf.data.Dataset.from_tensor_slices(list(texts)).batch(batch_size)
        for batch in dataset.map(self.tokenize):
            flat = batch.flat_values
            unknown += int(tf.reduce_sum(tf.cast(flat == self.unk_id, tf.int64)))
            total += int(tf.size(flat))
        return unknown / max(total, 1)

    # --------------------------------------------------------- save / load
    def get_config(self) -> dict:
        """The JSON-serializable constructor arguments (assets excluded)."""
        return {}

    def save_assets(self, directory):
        """Writes vocabulary or model files into `directory`."""

    @classmethod
    def from_directory(cls, directory, config):
        """Builds the tokenizer from `config` and the assets in `directory`."""
        raise NotImplementedError

    def save(self, directory):
        """Saves the tokenizer to `directory` (created if needed).

        Writes `tokenizer.json` and the vocabulary/model files; load it back
        with `keraslm.text.load_tokenizer(directory)`.
        """
        os.makedirs(directory, exist_ok=True)
        self.save_assets(directory)
        payload = {
            "format_version": FORMAT_VERSION,
            "type": self.type_name,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "config": self.get_config(),
            "vocabulary_size": self.vocabulary_size,
            "special_tokens": {
                name: {"id": i, "token": self.id_to_token(i)}
                for name, i in self.special_token_ids.items()
            },
        }
        with open(os.path.join(directory, CONFIG_FILENAME), "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, ensure_ascii=False)
            f.write("\n")
        return directory

    def __repr__(self):
        return (f"<{type(self).__name__} type={self.type_name!r} "
                f"vocabulary_size={self.vocabulary_size}>")


class VocabularyFileTokenizer(Tokenizer):
    """A tokenizer whose only asset is a one-token-per-line vocabulary file;
    its constructor takes that file's path first."""

    vocabulary_filename = "vocabulary.txt"

    def save_assets(self, directory):
        write_vocabulary_file(os.path.join(directory, self.vocabulary_filename),
                              self._vocabulary)

    @classmethod
    def from_directory(cls, directory, config):
        return cls(os.path.join(directory, cls.vocabulary_filename), **config)


def load_tokenizer(directory) -> Tokenizer:
    """Loads a tokenizer saved with `Tokenizer.save`.

    The `type` in `tokenizer.json` is looked up in
    `keraslm.registry.tokenizers`, so tokenizers from plugins load too.

    Example:

    ```python
    tokenizer.save("run/tokenizer")
    tokenizer = keraslm.text.load_tokenizer("run/tokenizer")
    ```
    """
    path = os.path.join(directory, CONFIG_FILENAME)
    if not os.path.isfile(path):
        raise TokenizerError(
            f"No tokenizer in '{directory}': '{CONFIG_FILENAME}' is missing. "
            f"Expected a directory written by `Tokenizer.save()` or "
            f"`keraslm tokenizer train -o DIR`."
        )
    with open(path, encoding="utf-8") as f:
        try:
            payload = json.load(f)
        except json.JSONDecodeError as error:
            raise TokenizerError(
                f"'{path}' is not valid JSON: {error}."
            ) from error
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise TokenizerError(
            f"'{path}' has format_version={version!r}; this keraslm reads "
            f"format_version={FORMAT_VERSION}."
        )
    cls = tokenizer_class(payload.get("type"))
    return cls.from_directory(directory, payload.get("config", {}))


def tokenizer_class(type_name):
    """Returns the tokenizer class registered as `type_name`."""
    from keraslm import registry

    return registry.tokenizers.get(type_name).load()


def train_tokenizer(type_name, texts, vocabulary_size=None, progress=None,
                    **options) -> Tokenizer:
    """Trains a tokenizer of the registered type `type_name` on `texts`.

    Args:
        type_name: str. A name in `keraslm.registry.tokenizers`:
            `"wordpiece"`, `"sentencepiece"`, `"word"`, `"character"`, `"byte"`.
        texts: an iterable of str. The training corpus, read once.
        vocabulary_size: int, optional. Target vocabulary size (special
            tokens included); ignored by `"byte"`.
        progress: None, True (print) or a callable taking a line: progress
            reports, passed to a `train` that takes `progress` (every
            built-in trainer does; a plugin's may not).
        **options: passed to the class's `train`.

    Example:

    ```python
    lines = keraslm.data.read_text("../shared/data/shakespeare/train.txt")
    tokenizer = keraslm.text.train_tokenizer("wordpiece", lines[:2000],
                                             vocabulary_size=1000)
    ```
    """
    cls = tokenizer_class(type_name)
    if not hasattr(cls, "train"):
        raise TokenizerError(
            f"Tokenizer '{type_name}' ({cls.__name__}) cannot be trained: it "
            f"has no `train` class method."
        )
    if vocabulary_size is not None:
        options["vocabulary_size"] = vocabulary_size
    if progress not in (None, False):
        import inspect

        parameters = inspect.signature(cls.train).parameters
        if "progress" in parameters or any(
                p.kind is p.VAR_KEYWORD for p in parameters.values()):
            options["progress"] = progress
    return cls.train(texts, **options)


def _as_string_tensor(inputs):
    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        if inputs.dtype != tf.string:
            raise TokenizerError(
                f"`tokenize` expects strings. Received a tensor of dtype "
                f"{inputs.dtype.name}."
            )
        return inputs
    if isinstance(inputs, bytes):
        return tf.constant(inputs)
    if isinstance(inputs, str):
        return tf.constant(inputs)
    inputs = list(inputs)
    for i, item in enumerate(inputs):
        if not isinstance(item, (str, bytes)):
            raise TokenizerError(
                f"`tokenize` expects strings. Received {type(item).__name__} "
                f"{item!r} at index {i}."
            )
    return tf.constant(inputs, dtype=tf.string, shape=[len(inputs)])


def _to_text(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def read_vocabulary_file(path) -> list:
    """Reads one token per line (UTF-8), checking for duplicates."""
    with open(path, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    return check_vocabulary(tokens, source=path)


def write_vocabulary_file(path, tokens):
    """Writes one token per line (UTF-8)."""
    for i, token in enumerate(tokens):
        if "\n" in token:
            raise TokenizerError(
                f"Token {i} ({token!r}) contains a newline and cannot be "
                f"written to a one-token-per-line vocabulary file."
            )
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")


def check_vocabulary(tokens, source="vocabulary", require_special=True) -> list:
    """Checks that `tokens` is a list of unique strings starting with the specials."""
    tokens = list(tokens)
    seen = {}
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TokenizerError(
                f"{source}: token {i} is not a string. Received: {token!r}."
            )
        if token in seen:
            raise TokenizerError(
                f"{source}: token {token!r} appears twice, at ids {seen[token]} "
                f"and {i}. Expected every token once."
            )
        seen[token] = i
    if require_special and tuple(tokens[: st.NUM_SPECIAL_TOKENS]) != st.SPECIAL_TOKENS:
        raise TokenizerError(
            f"{source}: the vocabulary must start with the special tokens "
            f"{list(st.SPECIAL_TOKENS)} (ids 0-{st.NUM_SPECIAL_TOKENS - 1}). "
            f"Received first tokens: {tokens[: st.NUM_SPECIAL_TOKENS]}. "
            f"Train a vocabulary with keraslm, or prepend the special tokens."
        )
    return tokens


def make_lookup_table(tokens, default_value=st.UNK_ID):
    """A `tf.lookup.StaticHashTable` from token string to int32 id."""
    initializer = tf.lookup.KeyValueTensorInitializer(
        keys=tf.constant(tokens, dtype=tf.string),
        values=tf.range(len(tokens), dtype=tf.int32),
    )
    return tf.lookup.StaticHashTable(initializer, default_value=default_value)


def most_frequent(counter, vocabulary_size=None, min_frequency=1) -> list:
    """Special tokens + the most frequent keys of `counter` (ties by first seen).

    Args:
        counter: `collections.Counter` of token strings.
        vocabulary_size: int, optional. Total size including special tokens.
        min_frequency: int. Drop tokens seen fewer times.
    """
    if vocabulary_size is not None and vocabulary_size <= st.NUM_SPECIAL_TOKENS:
        raise TokenizerError(
            f"`vocabulary_size` must leave room after the "
            f"{st.NUM_SPECIAL_TOKENS} special tokens. Received: "
            f"vocabulary_size={vocabulary_size}. Expected > "
            f"{st.NUM_SPECIAL_TOKENS}."
        )
    special = set(st.SPECIAL_TOKENS)
    ranked = [t for t, c in counter.most_common()
              if c >= min_frequency and t not in special and t]
    if vocabulary_size is not None:
        ranked = ranked[: vocabulary_size - st.NUM_SPECIAL_TOKENS]
    return list(st.SPECIAL_TOKENS) + ranked


def check_texts(texts, what="texts", error=None) -> list:
    """Checks that `texts` is a non-empty list of strings.

    Raises `error` (default `TokenizerError`) naming `what` otherwise.
    """
    error = error or TokenizerError
    if isinstance(texts, str):
        raise error(
            f"`{what}` must be a list of strings, not one string. Received: "
            f"{texts[:60]!r}. Wrap it in a list, or read a file with "
            f"`keraslm.data.read_text`."
        )
    texts = list(texts)
    if not texts:
        raise error(f"`{what}` is empty. Expected at least one string.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise error(
                f"`{what}` must contain strings. Received {type(text).__name__} "
                f"{text!r} at index {i}."
            )
    return texts


def ensure_nonempty(pieces, fill_id):
    """Replaces the empty rows of a `[n, None]` ragged tensor by `[fill_id]`."""
    lengths = pieces.row_lengths()
    empty = tf.equal(lengths, 0)
    new_lengths = tf.where(empty, tf.ones_like(lengths), lengths)
    is_fill = tf.repeat(empty, new_lengths)
    flat = tf.scatter_nd(tf.where(~is_fill), pieces.flat_values,
                         tf.reduce_sum(new_lengths)[None])
    flat = tf.where(is_fill, tf.cast(fill_id, flat.dtype), flat)
    return tf.RaggedTensor.from_row_lengths(flat, new_lengths)
