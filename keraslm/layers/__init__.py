"""Keras layers for language models, written with `keras.ops` only.

Every layer runs on the TensorFlow and JAX backends, is registered
serializable under the `"keraslm"` package, and computes softmax and layer
normalization in float32 under mixed precision.
"""

from keraslm.layers.feed_forward import FeedForward
from keraslm.layers.hashed_ngram_embedding import HashedNGramEmbedding
from keraslm.layers.lstm_stack import LSTMStack
from keraslm.layers.multi_head_attention import MultiHeadAttention
from keraslm.layers.position_embedding import PositionEmbedding
from keraslm.layers.rotary_embedding import RotaryEmbedding
from keraslm.layers.sinusoidal_position_encoding import (
    SinusoidalPositionEncoding,
)
from keraslm.layers.token_and_position_embedding import (
    TokenAndPositionEmbedding,
)
from keraslm.layers.token_embedding import TokenEmbedding
from keraslm.layers.transformer_decoder_block import TransformerDecoderBlock
from keraslm.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "FeedForward",
    "HashedNGramEmbedding",
    "LSTMStack",
    "MultiHeadAttention",
    "PositionEmbedding",
    "RotaryEmbedding",
    "SinusoidalPositionEncoding",
    "TokenAndPositionEmbedding",
    "TokenEmbedding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
]
