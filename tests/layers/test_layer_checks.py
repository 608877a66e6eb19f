"""`keraslm.testing.run_layer_test` for every public layer (config round trip,
symbolic + eager calls, a training step under XLA, mixed precision)."""

import numpy as np
import pytest

import keraslm.layers as layers
from keraslm.testing import run_layer_test

RNG = np.random.default_rng(0)
BATCH, LENGTH, HIDDEN = 2, 5, 8


def hidden(length=LENGTH, dim=HIDDEN):
    return RNG.normal(size=(BATCH, length, dim)).astype("float32")


def token_ids(length=LENGTH, vocabulary_size=20):
    ids = RNG.integers(1, vocabulary_size, size=(BATCH, length)).astype("int32")
    ids[1, -2:] = 0  # Padding.
    return ids


def test_token_embedding():
    run_layer_test(
        layers.TokenEmbedding,
        {"vocabulary_size": 20, "hidden_dim": HIDDEN, "mask_zero": True},
        token_ids(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=1,
    )


@pytest.mark.parametrize("order", [2, 3])
def test_hashed_ngram_embedding(order):
    run_layer_test(
        layers.HashedNGramEmbedding,
        {"vocabulary_size": 20, "num_buckets": 31, "output_dim": HIDDEN, "order": order},
        token_ids(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=1,
    )


@pytest.mark.parametrize("arguments,message", [
    (dict(vocabulary_size=46341, num_buckets=10), "at most 46340. Received: vocabulary_size=46341"),
    (dict(vocabulary_size=20000, num_buckets=200000, order=3),
     "at most 107374 here. Received: num_buckets=200000, vocabulary_size=20000"),
    (dict(vocabulary_size=10, num_buckets=10, order=1), "at least 2 .*Received: order=1"),
    (dict(vocabulary_size=10, num_buckets=0), "num_buckets"),
])
def test_hashed_ngram_embedding_refuses_what_int32_cannot_hash(arguments, message):
    with pytest.raises(ValueError, match=message):
        layers.HashedNGramEmbedding(output_dim=4, **arguments)


@pytest.mark.parametrize("tie_weights", [True, False])
def test_token_embedding_reverse(tie_weights):
    layer = run_layer_test(
        layers.TokenEmbedding,
        {"vocabulary_size": 20, "hidden_dim": HIDDEN, "tie_weights": tie_weights},
        hidden(),
        call_kwargs={"reverse": True},
        expected_output_shape=(BATCH, LENGTH, 20),
        expected_num_trainable_weights=1 if tie_weights else 2,
        run_training_check=False,  # Reverse-only use trains nothing new.
    )
    if tie_weights:
        x = hidden()
        expected = x @ np.asarray(layer.embeddings).T
        np.testing.assert_allclose(layer(x, reverse=True), expected, atol=1e-5)


def test_sinusoidal_position_encoding():
    run_layer_test(
        layers.SinusoidalPositionEncoding,
        {"max_wavelength": 100},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=0,
    )


def test_position_embedding():
    run_layer_test(
        layers.PositionEmbedding,
        {"sequence_length": 7},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=1,
    )


def test_rotary_embedding():
    run_layer_test(
        layers.RotaryEmbedding,
        {"max_wavelength": 100},
        RNG.normal(size=(BATCH, LENGTH, 2, 4)).astype("float32"),
        expected_output_shape=(BATCH, LENGTH, 2, 4),
        expected_num_trainable_weights=0,
    )


@pytest.mark.parametrize("position_encoding", ["learned", "sinusoidal"])
def test_token_and_position_embedding(position_encoding):
    run_layer_test(
        layers.TokenAndPositionEmbedding,
        {
            "vocabulary_size": 20,
            "sequence_length": 7,
            "hidden_dim": HIDDEN,
            "position_encoding": position_encoding,
            "mask_zero": True,
            "scale_embeddings": position_encoding == "sinusoidal",
        },
        token_ids(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=2 if position_encoding == "learned" else 1,
    )


@pytest.mark.parametrize("fused_qkv", [True, False])
def test_multi_head_attention_self(fused_qkv):
    run_layer_test(
        layers.MultiHeadAttention,
        {"num_heads": 2, "fused_qkv": fused_qkv, "dropout": 0.1},
        hidden(),
        call_kwargs={"use_causal_mask": True, "return_attention_scores": True},
        expected_output_shape=((BATCH, LENGTH, HIDDEN), (BATCH, 2, LENGTH, LENGTH)),
        expected_num_trainable_weights=4 if fused_qkv else 8,
    )


def test_multi_head_attention_cross_with_rotary_output_dim():
    run_layer_test(
        layers.MultiHeadAttention,
        {"num_heads": 2, "key_dim": 3, "output_dim": 6},
        {"query": hidden(), "value": hidden(length=3, dim=4)},
        expected_output_shape=(BATCH, LENGTH, 6),
        expected_num_trainable_weights=8,
    )
    run_layer_test(
        layers.MultiHeadAttention,
        {"num_heads": 2, "use_rotary_embedding": True, "use_bias": False},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=2,
    )


@pytest.mark.parametrize("activation", ["relu", "gelu", "swiglu"])
def test_feed_forward(activation):
    run_layer_test(
        layers.FeedForward,
        {"intermediate_dim": 16, "activation": activation, "dropout": 0.1},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=6 if activation == "swiglu" else 4,
    )


@pytest.mark.parametrize(
    "normalization, activation", [("post", "relu"), ("pre", "swiglu")]
)
def test_transformer_encoder_block(normalization, activation):
    run_layer_test(
        layers.TransformerEncoderBlock,
        {
            "num_heads": 2,
            "intermediate_dim": 16,
            "normalization": normalization,
            "activation": activation,
            "dropout": 0.1,
        },
        {"inputs": hidden(), "padding_mask": token_ids() != 0},
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
    )


def test_transformer_decoder_block_attention_dropout():
    run_layer_test(
        layers.TransformerDecoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "dropout": 0.1,
         "attention_dropout": 0.0},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=12,
    )


@pytest.mark.parametrize("attention_dropout, expected", [(None, 0.5), (0.0, 0.0),
                                                         (0.2, 0.2)])
def test_attention_dropout_applies_to_the_probabilities_only(attention_dropout, expected):
    block = layers.TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=0.5,
                                           attention_dropout=attention_dropout)
    x = hidden()
    block(x)
    assert block.self_attention.dropout == expected
    assert block.self_attention_dropout.rate == 0.5
    assert block.feedforward_dropout.rate == 0.5
    # Without attention dropout, attention itself is deterministic in training.
    attention = block.self_attention
    same = [np.asarray(attention(x, training=True)) for _ in range(2)]
    assert np.array_equal(same[0], same[1]) == (expected == 0.0)
    restored = layers.TransformerEncoderBlock.from_config(block.get_config())
    assert restored.attention_dropout == attention_dropout


def test_attention_dropout_is_checked():
    with pytest.raises(ValueError, match="attention_dropout"):
        layers.TransformerDecoderBlock(num_heads=2, intermediate_dim=16,
                                       attention_dropout=1.5)


def test_transformer_encoder_block_attention_scores():
    run_layer_test(
        layers.TransformerEncoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "activation": "gelu"},
        hidden(),
        call_kwargs={"return_attention_scores": True},
        expected_output_shape=((BATCH, LENGTH, HIDDEN), (BATCH, 2, LENGTH, LENGTH)),
        expected_num_trainable_weights=12,
    )


@pytest.mark.parametrize("normalization", ["post", "pre"])
def test_transformer_decoder_block(normalization):
    run_layer_test(
        layers.TransformerDecoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "normalization": normalization},
        hidden(),
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=12,
    )


def test_transformer_decoder_block_cross_attention():
    run_layer_test(
        layers.TransformerDecoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "dropout": 0.1},
        {
            "decoder_sequence": hidden(),
            "encoder_sequence": hidden(length=3),
            "encoder_padding_mask": np.array([[1, 1, 1], [1, 1, 0]], bool),
        },
        expected_output_shape=(BATCH, LENGTH, HIDDEN),
        expected_num_trainable_weights=22,
    )


@pytest.mark.parametrize(
    "init_kwargs, expected_output_shape",
    [
        ({"units": 6, "num_layers": 2, "dropout": 0.1}, (BATCH, LENGTH, 6)),
        ({"units": 6, "cell_type": "gru", "bidirectional": True}, (BATCH, LENGTH, 12)),
        ({"units": 6, "unroll": True, "return_sequences": False}, (BATCH, 6)),
    ],
)
def test_lstm_stack(init_kwargs, expected_output_shape):
    run_layer_test(
        layers.LSTMStack,
        init_kwargs,
        hidden(),
        expected_output_shape=expected_output_shape,
    )


def test_decoder_language_model_saving():
    import keras

    from keraslm.testing import run_model_saving_test

    inputs = keras.Input((None,), dtype="int32")
    embedding = layers.TokenAndPositionEmbedding(20, 8, HIDDEN, mask_zero=True)
    x = embedding(inputs)
    x = layers.TransformerDecoderBlock(2, 16, normalization="pre", use_rotary_embedding=True)(x)
    x = layers.TransformerDecoderBlock(2, 16, activation="swiglu")(x)
    logits = embedding(x, reverse=True)  # Tied logits, shared layer.
    run_model_saving_test(keras.Model(inputs, logits), token_ids())


def test_encoder_decoder_and_lstm_model_saving():
    import keras

    from keraslm.testing import run_model_saving_test

    encoder_ids = keras.Input((None,), dtype="int32")
    decoder_ids = keras.Input((None,), dtype="int32")
    encoded = layers.TokenAndPositionEmbedding(
        20, 8, HIDDEN, position_encoding="sinusoidal", mask_zero=True
    )(encoder_ids)
    encoded = layers.TransformerEncoderBlock(2, 16)(encoded)
    decoded = layers.TokenAndPositionEmbedding(20, 8, HIDDEN, mask_zero=True)(decoder_ids)
    decoded = layers.TransformerDecoderBlock(2, 16)(decoded, encoded)
    recurrent = layers.LSTMStack(6, num_layers=2, cell_type="gru")(decoded)
    model = keras.Model([encoder_ids, decoder_ids], [decoded, recurrent])
    run_model_saving_test(model, [token_ids(), token_ids(length=4)])
