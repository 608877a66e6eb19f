import keras

from keraslm.layers import HashedNGramEmbedding
from keraslm.layers import TokenEmbedding
from keraslm.layers import TransformerEncoderBlock
from keraslm.models import presets
from keraslm.models.base import BuilderModel
from keraslm.models.base import embed
from keraslm.models.base import padding_mask
from keraslm.models.base import position_layer


@keras.saving.register_keras_serializable(package="keraslm")
class TransformerEncoder(BuilderModel):
    """BERT-style bidirectional Transformer encoder.

    Token ids `(batch, length)` (id 0 is padding, never attended to) ->
    token + learned position embedding -> layer norm -> `num_layers`
    post-LN `TransformerEncoderBlock`s -> hidden states
    `(batch, length, hidden_dim)`. Task heads (masked LM, classification,
    token tagging, QA) attach to these hidden states; `token_embedding` is
    exposed for a tied masked-LM output.

    Parameters: `V*d + T*d + 2*d + L*(4*d*d + 4*d + 2*d*f + f + d + 4*d)`,
    plus `ngram_buckets*d` with hashed n-grams.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length: as in keras-hub's `BertBackbone`.
        dropout: float. Defaults to `0.0`.
        attention_dropout: float or None. Dropout on the attention
            probabilities alone; None (the default) is `dropout`.
        activation: str. Defaults to `"gelu"`.
        normalization: str. `"post"` (BERT) or `"pre"`. Defaults to `"post"`.
        ngram_buckets: int. `0` (the default) for none; otherwise a
            `keraslm.layers.HashedNGramEmbedding` with this many rows adds the
            hashed n-grams ending at each position to its token embedding.
            With `num_layers=0` and a mean-pooled classification head this is
            a fastText-style bag of words and word pairs.
        ngram_order: int. The longest n-gram when `ngram_buckets > 0`.
            Defaults to `2` (bigrams).

    Example:

    ```python
    encoder = keraslm.models.transformer_encoder(vocabulary_size=1000, preset="tiny")
    hidden = encoder(np.array([[2, 17, 9, 3, 0]]))   # (1, 5, 128)
    ```

    References:
        - [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    """

    config_arguments = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                        "intermediate_dim", "max_sequence_length", "dropout",
                        "attention_dropout", "activation", "normalization",
                        "layer_norm_epsilon", "ngram_buckets", "ngram_order")

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim,
                 intermediate_dim, max_sequence_length, dropout=0.0,
                 attention_dropout=None, activation="gelu",
                 normalization="post",
                 layer_norm_epsilon=1e-12, ngram_buckets=0, ngram_order=2,
                 dtype=None, **kwargs):
        token_embedding = TokenEmbedding(vocabulary_size, hidden_dim, dtype=dtype,
                                         name="token_embedding")
        if isinstance(ngram_buckets, bool) or not isinstance(ngram_buckets, int) \
                or ngram_buckets < 0:
            raise ValueError("`ngram_buckets` must be an int >= 0 (0 for no n-gram "
                             f"embedding). Received: ngram_buckets={ngram_buckets!r}")
        if not ngram_buckets and ngram_order != 2:
            raise ValueError("`ngram_order` only applies with `ngram_buckets` > 0. "
                             f"Received: ngram_order={ngram_order!r}, ngram_buckets=0")
        ngrams = HashedNGramEmbedding(
            vocabulary_size, ngram_buckets, hidden_dim, order=ngram_order,
            dtype=dtype, name="ngram_embedding") if ngram_buckets else None
        positions = position_layer("learned", max_sequence_length, dtype,
                                   "position_embedding")
        embeddings_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype,
                                                  name="embeddings_dropout")
        blocks = [
            TransformerEncoderBlock(
                num_heads=num_heads, intermediate_dim=intermediate_dim,
                dropout=dropout, attention_dropout=attention_dropout,
                activation=activation,
                normalization=normalization,
                layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
                name=f"transformer_layer_{index}")
            for index in range(num_layers)
        ]
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        mask = padding_mask(token_ids)
        x = embed(token_embedding, positions, token_ids)
        if ngrams is not None:
            x = x + ngrams(token_ids)
        x = embeddings_dropout(embeddings_norm(x))
        for block in blocks:
            x = block(x, padding_mask=mask)
        super().__init__(inputs=token_ids, outputs=x, dtype=dtype, **kwargs)
        self.store_arguments(locals())
        self.token_embedding = token_embedding
        self.ngram_embedding = ngrams
        self.position_embedding = positions
        self.transformer_layers = blocks

    def hidden_states_model(self):
        """This model: its outputs already are the hidden states."""
        return self



def transformer_encoder(vocabulary_size=None, *, preset=None, num_layers=None,
                        num_heads=None, hidden_dim=None, intermediate_dim=None,
                        max_sequence_length=None, dropout=None, **kwargs):
    """Builds a BERT-style `TransformerEncoder` returning hidden states.

    Example:

    ```python
    encoder = keraslm.models.transformer_encoder(vocabulary_size=8192, preset="small")
    ```
    """
    return presets.build("transformer_encoder", TransformerEncoder, preset, dict(
        vocabulary_size=vocabulary_size, num_layers=num_layers,
        num_heads=num_heads, hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        max_sequence_length=max_sequence_length, dropout=dropout),
        presets.TRANSFORMER_REQUIRED, kwargs)
