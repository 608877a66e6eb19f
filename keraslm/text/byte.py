"""Byte-level tokenizer: UTF-8 bytes, no vocabulary to learn."""

import tensorflow as tf

from keraslm.text import special_tokens as st
from keraslm.text.tokenizer import Tokenizer


class ByteTokenizer(Tokenizer):
    """Maps text to its UTF-8 bytes: byte `b` has id `b + 5`.

    Ids 0-4 are the shared special tokens, so the vocabulary size is 261.
    Nothing is ever unknown and `decode(encode(x)) == x` for every string.

    Example:

    ```python
    tokenizer = keraslm.text.ByteTokenizer()
    tokenizer.encode("hé")           # [109, 200, 174]
    tokenizer.decode([109, 200, 174])  # 'hé'
    ```
    """

    type_name = "byte"
    offset = st.NUM_SPECIAL_TOKENS

    def __init__(self, name=None):
        super().__init__(name=name)
        self._bytes = tf.constant([bytes([b]) for b in range(256)])

    def get_vocabulary(self):
        return list(st.SPECIAL_TOKENS) + [f"<0x{b:02X}>" for b in range(256)]

    def token_to_id(self, token):
        if token in st.SPECIAL_TOKENS:
            return st.SPECIAL_TOKENS.index(token)
        if isinstance(token, str) and len(token.encode("utf-8")) == 1:
            return token.encode("utf-8")[0] + self.offset
        return super().token_to_id(token)

    def _tokenize_batch(self, strings):
        pieces = tf.strings.bytes_split(strings)
        values = tf.io.decode_raw(pieces.flat_values, tf.uint8)
        values = tf.cast(tf.reshape(values, [-1]), tf.int32) + self.offset
        return pieces.with_flat_values(values)

    def _detokenize_batch(self, ids):
        values = tf.clip_by_value(ids.flat_values - self.offset, 0, 255)
        return tf.strings.reduce_join(
            ids.with_flat_values(tf.gather(self._bytes, values)), axis=-1)

    @classmethod
    def from_directory(cls, directory, config):
        return cls(**config)

    @classmethod
    def train(cls, texts=None, vocabulary_size=None):
        """Nothing to learn; returns a `ByteTokenizer` (for a uniform API)."""
        return cls()
