import keras
from keras import ops

from keraslm.layers import TokenEmbedding
from keraslm.layers import TransformerDecoderBlock
from keraslm.layers import TransformerEncoderBlock
from keraslm.models import presets
from keraslm.models.base import BuilderModel
from keraslm.models.base import CachedDecodingMixin
from keraslm.models.base import embed
from keraslm.models.base import padding_mask
from keraslm.models.base import position_layer


@keras.saving.register_keras_serializable(package="keraslm")
class Seq2SeqTransformer(CachedDecodingMixin, BuilderModel):
    """Encoder-decoder Transformer (the original "Attention is all you need").

    Inputs: a dict with `"encoder_token_ids"` `(batch, source_length)` and
    `"decoder_token_ids"` `(batch, target_length)` (the target shifted right
    for teacher forcing); id 0 is padding in both. Output: logits
    `(batch, target_length, target_vocabulary_size)` from the transposed
    decoder embedding. Defaults follow the paper: sinusoidal positions,
    post-LN, relu.

    For generation, `encode` runs the encoder once and `call_with_cache`
    decodes new target tokens against self- and cross-attention caches.

    Parameters (sinusoidal positions): `(V + V_t)*d + L*E + L*(E + 4*d*d + 6*d)`
    with `E = 4*d*d + 4*d + 2*d*f + f + 5*d` (one encoder block).

    Args:
        vocabulary_size: int. Source vocabulary.
        target_vocabulary_size: int or None. Target vocabulary; defaults to
            `vocabulary_size`.
        num_layers: int. Encoder layers and decoder layers (each).
        num_heads, hidden_dim, intermediate_dim, max_sequence_length,
        dropout: as in the other builders.
        attention_dropout: float or None. Dropout on the attention
            probabilities alone; None (the default) is `dropout`.
        activation: str. Defaults to `"relu"`.
        normalization: str. Defaults to `"post"`.
        position_encoding: str. `"sinusoidal"` or `"learned"`. Defaults to
            `"sinusoidal"`.

    Example:

    ```python
    model = keraslm.models.seq2seq_transformer(vocabulary_size=1000, preset="tiny")
    logits = model({"encoder_token_ids": np.array([[4, 8, 15, 0]]),
                    "decoder_token_ids": np.array([[2, 16, 23]])})   # (1, 3, 1000)
    ```

    References:
        - [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    """

    config_arguments = ("vocabulary_size", "target_vocabulary_size", "num_layers",
                        "num_heads", "hidden_dim", "intermediate_dim",
                        "max_sequence_length", "dropout", "attention_dropout",
                        "activation", "normalization", "position_encoding",
                        "layer_norm_epsilon")

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim,
                 intermediate_dim, max_sequence_length, target_vocabulary_size=None,
                 dropout=0.0, attention_dropout=None, activation="relu",
                 normalization="post",
                 position_encoding="sinusoidal", layer_norm_epsilon=1e-5,
                 dtype=None, **kwargs):
        target_vocabulary_size = target_vocabulary_size or vocabulary_size

        scale = hidden_dim ** 0.5
        encoder_embedding = TokenEmbedding(vocabulary_size, hidden_dim, dtype=dtype,
                                           name="encoder_token_embedding")
        decoder_embedding = TokenEmbedding(target_vocabulary_size, hidden_dim,
                                           dtype=dtype, name="decoder_token_embedding")
        encoder_positions = position_layer(position_encoding, max_sequence_length,
                                           dtype, "encoder_position_embedding")
        decoder_positions = position_layer(position_encoding, max_sequence_length,
                                           dtype, "decoder_position_embedding")
        if encoder_positions is None:
            raise ValueError("seq2seq_transformer supports `position_encoding` "
                             "'sinusoidal' or 'learned'. Received: 'rotary'.")
        encoder_dropout = keras.layers.Dropout(dropout, dtype=dtype,
                                               name="encoder_embeddings_dropout")
        decoder_dropout = keras.layers.Dropout(dropout, dtype=dtype,
                                               name="decoder_embeddings_dropout")

        def block_arguments(index, kind):
            return dict(num_heads=num_heads, intermediate_dim=intermediate_dim,
                        dropout=dropout, attention_dropout=attention_dropout,
                        activation=activation,
                        normalization=normalization,
                        layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
                        name=f"{kind}_layer_{index}")

        encoder_blocks = [TransformerEncoderBlock(**block_arguments(i, "encoder"))
                          for i in range(num_layers)]
        decoder_blocks = [TransformerDecoderBlock(**block_arguments(i, "decoder"))
                          for i in range(num_layers)]
        encoder_norm = decoder_norm = None
        if normalization == "pre":
            encoder_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_final_norm")
            decoder_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="decoder_final_norm")

        encoder_ids = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
        decoder_ids = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
        encoder_mask = padding_mask(encoder_ids)
        decoder_mask = padding_mask(decoder_ids)
        encoded = encoder_dropout(embed(encoder_embedding, encoder_positions,
                                        encoder_ids, scale=scale))
        for block in encoder_blocks:
            encoded = block(encoded, padding_mask=encoder_mask)
        if encoder_norm is not None:
            encoded = encoder_norm(encoded)
        x = decoder_dropout(embed(decoder_embedding, decoder_positions, decoder_ids,
                                  scale=scale))
        for block in decoder_blocks:
            x = block(x, encoded, decoder_padding_mask=decoder_mask,
                      encoder_padding_mask=encoder_mask)
        if decoder_norm is not None:
            x = decoder_norm(x)
        logits = decoder_embedding(x, reverse=True)
        super().__init__(
            inputs={"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids},
            outputs=logits, dtype=dtype, **kwargs)
        self.store_arguments(locals())

        self.encoder_token_embedding = encoder_embedding
        self.decoder_token_embedding = decoder_embedding
        self.encoder_position_embedding = encoder_positions
        self.decoder_position_embedding = decoder_positions
        self.encoder_dropout = encoder_dropout
        self.decoder_dropout = decoder_dropout
        self.encoder_layers = encoder_blocks
        self.decoder_layers = decoder_blocks
        self.encoder_final_norm = encoder_norm
        self.decoder_final_norm = decoder_norm

    def encode(self, encoder_token_ids):
        """Runs the encoder; returns `(encoder_outputs, encoder_padding_mask)`."""
        padding_mask = ops.not_equal(encoder_token_ids, 0)
        x = self.encoder_dropout(embed(
            self.encoder_token_embedding, self.encoder_position_embedding,
            encoder_token_ids, scale=self.hidden_dim ** 0.5))
        for block in self.encoder_layers:
            x = block(x, padding_mask=padding_mask)
        if self.encoder_final_norm is not None:
            x = self.encoder_final_norm(x)
        return x, padding_mask


    def cross_attention_cache(self, encoder_outputs):
        """Encoder keys/values of every decoder layer, computed once."""
        return ops.stack([block.compute_cross_attention_cache(encoder_outputs)
                          for block in self.decoder_layers], axis=1)

    def call_with_cache(self, decoder_token_ids, encoder_padding_mask, cache,
                        cross_cache, cache_update_index):
        """Decodes new target tokens against the caches.

        Args:
            decoder_token_ids: int `(batch, new_length)`.
            encoder_padding_mask: bool `(batch, source_length)` from `encode`.
            cache: self-attention cache from `empty_cache` or a previous call.
            cross_cache: from `cross_attention_cache(encoder_outputs)`.
            cache_update_index: int. Position of the first new token.

        Returns:
            `(logits, hidden_states, cache)`.
        """
        x = self.decoder_dropout(embed(
            self.decoder_token_embedding, self.decoder_position_embedding,
            decoder_token_ids, start_index=cache_update_index,
            scale=self.hidden_dim ** 0.5))
        caches = []
        for index, block in enumerate(self.decoder_layers):
            x, layer_cache = block(
                x,
                # The block needs an encoder sequence to take the
                # cross-attention path; the cache supplies its keys/values.
                encoder_sequence=cross_cache[:, index, 0],
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=cache[:, index],
                self_attention_cache_update_index=cache_update_index,
                cross_attention_cache=cross_cache[:, index],
            )
            caches.append(layer_cache)
        if self.decoder_final_norm is not None:
            x = self.decoder_final_norm(x)
        logits = self.decoder_token_embedding(x, reverse=True)
        return logits, x, ops.stack(caches, axis=1)


def seq2seq_transformer(vocabulary_size=None, *, preset=None, num_layers=None,
                        num_heads=None, hidden_dim=None, intermediate_dim=None,
                        max_sequence_length=None, dropout=None, **kwargs):
    """Builds a `Seq2SeqTransformer` (encoder-decoder).

    Example:

    ```python
    model = keraslm.models.seq2seq_transformer(vocabulary_size=8000,
                                               target_vocabulary_size=9000,
                                               preset="small")
    ```
    """
    return presets.build("seq2seq_transformer", Seq2SeqTransformer, preset, dict(
        vocabulary_size=vocabulary_size, num_layers=num_layers,
        num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length, dropout=dropout),
        presets.TRANSFORMER_REQUIRED, kwargs)
