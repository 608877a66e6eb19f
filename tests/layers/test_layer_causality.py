"""Causality, padding invariance and cached decoding of the keraslm layers.

Also runs under KERAS_BACKEND=jax (see test_layers_jax.py).
"""

import os

import keras
import numpy as np
import pytest
from keras import ops

import keraslm.layers as layers

VOCABULARY, LENGTH, HIDDEN, HEADS = 30, 8, 16, 4
HEAD_DIM = HIDDEN // HEADS
ATOL = 1e-5


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def token_ids(batch=2, length=LENGTH, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(1, VOCABULARY, size=(batch, length)).astype("int32")


def hidden(batch=2, length=LENGTH, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, HIDDEN)).astype(
        "float32"
    )


def decoder_lm(normalization="pre", use_rotary_embedding=False):
    """Token ids -> logits: embedding, two decoder blocks, tied logits."""
    inputs = keras.Input((None,), dtype="int32")
    embedding = layers.TokenAndPositionEmbedding(
        VOCABULARY, 2 * LENGTH, HIDDEN, mask_zero=True
    )
    x = embedding(inputs)
    for _ in range(2):
        x = layers.TransformerDecoderBlock(
            HEADS,
            32,
            normalization=normalization,
            activation="gelu",
            use_rotary_embedding=use_rotary_embedding,
        )(x)
    logits = embedding(x, reverse=True)
    return keras.Model(inputs, logits)


@pytest.mark.parametrize("normalization", ["post", "pre"])
def test_decoder_lm_is_causal(normalization):
    model = decoder_lm(normalization, use_rotary_embedding=True)
    ids = token_ids()
    reference = numpy(model(ids))
    rng = np.random.default_rng(1)
    for t in range(LENGTH - 1):
        changed = ids.copy()
        changed[:, t + 1 :] = rng.integers(1, VOCABULARY, size=(2, LENGTH - t - 1))
        output = numpy(model(changed))
        np.testing.assert_allclose(output[:, : t + 1], reference[:, : t + 1], atol=ATOL)
        assert not np.allclose(output[:, t + 1 :], reference[:, t + 1 :], atol=ATOL)


def test_encoder_block_causal_mask_and_attention_scores():
    block = layers.TransformerEncoderBlock(HEADS, 32)
    x = hidden()
    reference, scores = block(x, use_causal_mask=True, return_attention_scores=True)
    scores = numpy(scores)
    assert np.all(np.triu(scores, k=1) == 0)  # No weight on future keys.
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    changed = x.copy()
    changed[:, 5:] += 1.0
    output = block(changed, use_causal_mask=True)
    np.testing.assert_allclose(numpy(output)[:, :5], numpy(reference)[:, :5], atol=ATOL)


@pytest.mark.parametrize("kind", ["encoder", "decoder", "lstm", "bilstm"])
def test_appending_padding_keeps_real_outputs(kind):
    inputs = keras.Input((None,), dtype="int32")
    x = layers.TokenAndPositionEmbedding(
        VOCABULARY, 2 * LENGTH, HIDDEN, mask_zero=True
    )(inputs)
    if kind == "encoder":  # Bidirectional attention: padding must be masked.
        x = layers.TransformerEncoderBlock(HEADS, 32)(x)
        x = layers.TransformerEncoderBlock(HEADS, 32, normalization="pre")(x)
    elif kind == "decoder":
        x = layers.TransformerDecoderBlock(HEADS, 32)(x)
    else:
        x = layers.LSTMStack(8, num_layers=2, bidirectional=kind == "bilstm")(x)
    model = keras.Model(inputs, x)
    ids = token_ids(length=5)
    ids[1, 3:] = 0  # The second row is already padded.
    padded = np.concatenate([ids, np.zeros((2, 3), "int32")], axis=1)
    reference, output = numpy(model(ids)), numpy(model(padded))
    np.testing.assert_allclose(output[0, :5], reference[0, :5], atol=ATOL)
    np.testing.assert_allclose(output[1, :3], reference[1, :3], atol=ATOL)


def test_explicit_padding_mask_equals_keras_mask():
    block = layers.TransformerEncoderBlock(HEADS, 32)
    embedding = layers.TokenAndPositionEmbedding(
        VOCABULARY, LENGTH, HIDDEN, mask_zero=True
    )
    ids = token_ids()
    ids[0, 6:] = 0
    x = embedding(ids)  # Carries a Keras mask.
    implicit = block(x)
    explicit = block(ops.convert_to_tensor(numpy(x)), padding_mask=ids != 0)
    np.testing.assert_allclose(numpy(implicit), numpy(explicit), atol=ATOL)


def empty_cache(batch=2, length=LENGTH):
    return ops.zeros((batch, 2, length, HEADS, HEAD_DIM))


@pytest.mark.parametrize("use_rotary_embedding", [False, True])
def test_attention_cache_equals_full_sequence(use_rotary_embedding):
    attention = layers.MultiHeadAttention(
        HEADS, use_rotary_embedding=use_rotary_embedding
    )
    x = hidden()
    full = numpy(attention(x, use_causal_mask=True))
    cache = empty_cache()
    # A 3-token prefill, then one token at a time.
    steps = [(0, 3)] + [(t, t + 1) for t in range(3, LENGTH)]
    for start, end in steps:
        output, cache = attention(
            x[:, start:end], use_causal_mask=True, cache=cache, cache_update_index=start
        )
        np.testing.assert_allclose(numpy(output), full[:, start:end], atol=ATOL)
    # Without a causal mask the cache still hides slots not written yet.
    cache = empty_cache()
    output, cache = attention(x[:, :4], cache=cache, cache_update_index=0)
    np.testing.assert_allclose(numpy(output), numpy(attention(x[:, :4])), atol=ATOL)


@pytest.mark.parametrize("normalization", ["post", "pre"])
@pytest.mark.parametrize("cross_attention", [False, True])
def test_decoder_cache_equals_full_sequence(normalization, cross_attention):
    block = layers.TransformerDecoderBlock(
        HEADS, 32, normalization=normalization, activation="swiglu"
    )
    x = hidden()
    encoder = hidden(length=5, seed=1) if cross_attention else None
    encoder_padding_mask = np.array([[1] * 5, [1, 1, 1, 0, 0]], bool)
    kwargs = {"encoder_padding_mask": encoder_padding_mask} if cross_attention else {}
    full = numpy(block(x, encoder, **kwargs))
    cross_cache = block.compute_cross_attention_cache(encoder) if cross_attention else None
    cache = empty_cache()
    for t in range(LENGTH):
        output, cache = block(
            x[:, t : t + 1],
            encoder,
            self_attention_cache=cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross_cache,
            **kwargs,
        )
        np.testing.assert_allclose(numpy(output)[:, 0], full[:, t], atol=ATOL)


def test_decoder_lm_cached_greedy_decoding_equals_full_sequence():
    """Step-by-step decoding through a whole LM (embedding with start_index,
    two cached blocks, tied logits) gives the full-sequence logits."""
    embedding = layers.TokenAndPositionEmbedding(VOCABULARY, LENGTH, HIDDEN)
    blocks = [layers.TransformerDecoderBlock(HEADS, 32, normalization="pre") for _ in range(2)]

    def full_logits(ids):
        x = embedding(ids)
        for block in blocks:
            x = block(x)
        return numpy(embedding.token_embedding(x, reverse=True))

    ids = token_ids(length=LENGTH)
    reference = full_logits(ids)
    caches = [empty_cache() for _ in blocks]
    for t in range(LENGTH):
        x = embedding(ids[:, t : t + 1], start_index=t)
        for index, block in enumerate(blocks):
            x, caches[index] = block(
                x, self_attention_cache=caches[index], self_attention_cache_update_index=t
            )
        logits = numpy(embedding.token_embedding(x, reverse=True))
        np.testing.assert_allclose(logits[:, 0], reference[:, t], atol=ATOL)


def test_cached_decoding_under_jit():
    """The cache path compiles with a traced `cache_update_index`."""
    block = layers.TransformerDecoderBlock(HEADS, 32)
    x = hidden()
    full = numpy(block(x))

    model_input = keras.Input((1, HIDDEN), batch_size=2)
    cache_input = keras.Input((2, LENGTH, HEADS, HEAD_DIM), batch_size=2)
    index_input = keras.Input((), batch_size=1, dtype="int32")
    output, new_cache = block(
        model_input,
        self_attention_cache=cache_input,
        self_attention_cache_update_index=index_input[0],
    )
    step = keras.Model([model_input, cache_input, index_input], [output, new_cache])
    step.compile(jit_compile=True)
    cache = numpy(empty_cache())
    for t in range(LENGTH):
        output, cache = step.predict_on_batch(
            [x[:, t : t + 1], cache, np.array([t], "int32")]
        )
        np.testing.assert_allclose(np.asarray(output)[:, 0], full[:, t], atol=ATOL)


def test_errors_name_the_received_values():
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        layers.TransformerEncoderBlock(4, 8)(np.zeros((1, 2, 10), "float32"))
    with pytest.raises(ValueError, match="`hidden_dim` must be divisible"):
        layers.MultiHeadAttention(3)(np.zeros((1, 2, 10), "float32"))
    with pytest.raises(ValueError, match="normalization='middle'"):
        layers.TransformerDecoderBlock(2, 8, normalization="middle")
    with pytest.raises(ValueError, match="built without cross-attention"):
        block = layers.TransformerDecoderBlock(2, 8)
        block(np.zeros((1, 2, 4), "float32"))
        block(np.zeros((1, 2, 4), "float32"), np.zeros((1, 3, 4), "float32"))


@pytest.mark.parametrize("order", [2, 3])
def test_hashed_ngram_embedding_is_causal_and_ignores_padding(order):
    layer = layers.HashedNGramEmbedding(VOCABULARY, 97, HIDDEN, order=order)
    ids = token_ids()
    reference = numpy(layer(ids))
    rng = np.random.default_rng(1)
    for t in range(LENGTH - 1):
        changed = ids.copy()
        changed[:, t + 1:] = rng.integers(1, VOCABULARY, size=(2, LENGTH - t - 1))
        output = numpy(layer(changed))
        np.testing.assert_array_equal(output[:, : t + 1], reference[:, : t + 1])
    padded = numpy(layer(np.pad(ids, ((0, 0), (0, 3)))))
    np.testing.assert_array_equal(padded[:, :LENGTH], reference)
    assert np.all(padded[:, LENGTH:] == 0)
    # Every position from `order - 1` on has an n-gram of each order.
    assert np.all(np.abs(reference[:, order - 1:]).sum(-1) > 0)


def test_runs_on_the_requested_backend():
    # Set by test_layers_jax.py so a silently ignored KERAS_BACKEND fails.
    expected = os.environ.get("KERASLM_EXPECTED_BACKEND")
    if expected:
        assert keras.backend.backend() == expected


def test_cross_attention_cache_under_mixed_precision():
    block = layers.TransformerDecoderBlock(HEADS, 32, dtype="mixed_bfloat16")
    x, encoder = hidden(), hidden(length=5, seed=1)
    full = numpy(ops.cast(block(x, encoder), "float32"))
    cross_cache = block.compute_cross_attention_cache(encoder)
    assert keras.backend.standardize_dtype(cross_cache.dtype) == "bfloat16"
    cache = ops.zeros((2, 2, LENGTH, HEADS, HEAD_DIM), "bfloat16")
    for t in range(LENGTH):
        output, cache = block(
            x[:, t : t + 1],
            encoder,
            self_attention_cache=cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross_cache,
        )
        output = numpy(ops.cast(output, "float32"))
        assert np.all(np.isfinite(output))
        np.testing.assert_allclose(output[:, 0], full[:, t], atol=0.1)
