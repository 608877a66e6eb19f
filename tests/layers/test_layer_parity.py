"""Parity with code we did not write: Keras, keras-hub and the paper's formulas.

Weights are copied from the peer layer (after randomizing them, so layer norm
scales and biases matter too); outputs must agree within 1e-5 in float32.
Also runs under KERAS_BACKEND=jax (see test_jax_backend.py).
"""

import keras
import keras_hub
import numpy as np
import pytest

import keraslm.layers as layers

# Weight copying from the peers.
def _np(variable):
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def randomize(layer, seed=0, scale=0.3):
    """Gives every weight of `layer` random values (not the init pattern)."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype("float32"))


def copy_keras_attention(source, target):
    """`keras.layers.MultiHeadAttention` -> `keraslm.layers.MultiHeadAttention`."""
    dense = {
        "query": source._query_dense,
        "key": source._key_dense,
        "value": source._value_dense,
    }
    if getattr(target, "qkv_kernel", None) is not None:
        target.qkv_kernel.assign(
            np.stack([_np(dense[n].kernel) for n in dense], axis=1)
        )
        target.qkv_bias.assign(np.stack([_np(dense[n].bias) for n in dense], axis=0))
    else:
        for name, layer in dense.items():
            getattr(target, f"{name}_kernel").assign(_np(layer.kernel))
            getattr(target, f"{name}_bias").assign(_np(layer.bias))
    target.output_kernel.assign(_np(source._output_dense.kernel))
    target.output_bias.assign(_np(source._output_dense.bias))


def _copy_layer_norm(source, target):
    target.gamma.assign(_np(source.gamma))
    target.beta.assign(_np(source.beta))


def _copy_dense(source, target):
    target.kernel.assign(_np(source.kernel))
    target.bias.assign(_np(source.bias))


def copy_keras_hub_block(source, target):
    """`keras_hub.layers.TransformerEncoder`/`TransformerDecoder` -> our block."""
    copy_keras_attention(source._self_attention_layer, target.self_attention)
    _copy_layer_norm(source._self_attention_layer_norm, target.self_attention_layer_norm)
    if getattr(source, "_cross_attention_layer", None) is not None:
        copy_keras_attention(source._cross_attention_layer, target.cross_attention)
        _copy_layer_norm(
            source._cross_attention_layer_norm, target.cross_attention_layer_norm
        )
    _copy_dense(
        source._feedforward_intermediate_dense, target.feedforward.intermediate_dense
    )
    _copy_dense(source._feedforward_output_dense, target.feedforward.output_dense)
    _copy_layer_norm(source._feedforward_layer_norm, target.feedforward_layer_norm)


ATOL = 1e-5
BATCH, LENGTH, HIDDEN, HEADS = 2, 7, 16, 4


def data(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(actual),
        keras.ops.convert_to_numpy(expected),
        atol=atol,
        rtol=0,
    )


def random_attention_mask(seed=1):
    rng = np.random.default_rng(seed)
    mask = rng.random((BATCH, LENGTH, 5)) > 0.3
    mask[..., 0] = True  # At least one key per query.
    return mask


@pytest.mark.parametrize("fused_qkv", [True, False])
@pytest.mark.parametrize("use_causal_mask", [False, True])
def test_self_attention_matches_keras(fused_qkv, use_causal_mask):
    x = data(BATCH, LENGTH, HIDDEN)
    peer = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=HIDDEN // HEADS)
    peer_out, peer_scores = peer(
        x, x, use_causal_mask=use_causal_mask, return_attention_scores=True
    )
    randomize(peer)
    peer_out, peer_scores = peer(
        x, x, use_causal_mask=use_causal_mask, return_attention_scores=True
    )
    ours = layers.MultiHeadAttention(num_heads=HEADS, fused_qkv=fused_qkv)
    ours(x)
    copy_keras_attention(peer, ours)
    out, scores = ours(
        x, use_causal_mask=use_causal_mask, return_attention_scores=True
    )
    assert_close(out, peer_out)
    assert_close(scores, peer_scores)


def test_cross_attention_with_mask_matches_keras():
    query, value = data(BATCH, LENGTH, HIDDEN), data(BATCH, 5, 12, seed=1)
    mask = random_attention_mask()
    peer = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=HIDDEN // HEADS)
    peer(query, value)
    randomize(peer)
    ours = layers.MultiHeadAttention(num_heads=HEADS)
    ours(query, value)
    copy_keras_attention(peer, ours)
    assert_close(
        ours(query, value, attention_mask=mask),
        peer(query, value, attention_mask=mask),
    )


@pytest.mark.parametrize("normalization", ["post", "pre"])
def test_encoder_block_matches_keras_hub(normalization):
    x = data(BATCH, LENGTH, HIDDEN)
    padding_mask = np.ones((BATCH, LENGTH), bool)
    padding_mask[1, -3:] = False
    peer = keras_hub.layers.TransformerEncoder(
        intermediate_dim=32,
        num_heads=HEADS,
        normalize_first=normalization == "pre",
    )
    peer(x)
    randomize(peer)
    ours = layers.TransformerEncoderBlock(
        num_heads=HEADS, intermediate_dim=32, normalization=normalization
    )
    ours(x)
    copy_keras_hub_block(peer, ours)
    assert_close(
        ours(x, padding_mask=padding_mask), peer(x, padding_mask=padding_mask)
    )


@pytest.mark.parametrize("normalization", ["post", "pre"])
@pytest.mark.parametrize("cross_attention", [False, True])
def test_decoder_block_matches_keras_hub(normalization, cross_attention):
    x = data(BATCH, LENGTH, HIDDEN)
    encoder = data(BATCH, 5, HIDDEN, seed=1) if cross_attention else None
    encoder_padding_mask = None
    if cross_attention:
        encoder_padding_mask = np.array([[1] * 5, [1, 1, 1, 0, 0]], bool)
    peer = keras_hub.layers.TransformerDecoder(
        intermediate_dim=32,
        num_heads=HEADS,
        normalize_first=normalization == "pre",
    )
    peer(x, encoder)
    randomize(peer)
    ours = layers.TransformerDecoderBlock(
        num_heads=HEADS, intermediate_dim=32, normalization=normalization
    )
    ours(x, encoder)
    copy_keras_hub_block(peer, ours)
    expected = peer(x, encoder, encoder_padding_mask=encoder_padding_mask)
    actual = ours(x, encoder, encoder_padding_mask=encoder_padding_mask)
    assert_close(actual, expected)


def paper_sinusoid(length, dim, start=0):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...)."""
    encoding = np.zeros((length, dim))
    for pos in range(start, start + length):
        for i in range((dim + 1) // 2):
            angle = pos / 10000 ** (2 * i / dim)
            encoding[pos - start, 2 * i] = np.sin(angle)
            if 2 * i + 1 < dim:
                encoding[pos - start, 2 * i + 1] = np.cos(angle)
    return encoding


def test_sinusoidal_position_encoding_matches_paper_formula():
    x = data(BATCH, 50, HIDDEN)
    out = layers.SinusoidalPositionEncoding()(x)
    assert_close(out[0], paper_sinusoid(50, HIDDEN))
    assert_close(out[1], paper_sinusoid(50, HIDDEN))
    odd = layers.SinusoidalPositionEncoding()(data(1, 20, 7))
    assert_close(odd[0], paper_sinusoid(20, 7))
    shifted = layers.SinusoidalPositionEncoding()(data(1, 3, HIDDEN), start_index=40)
    assert_close(shifted[0], paper_sinusoid(3, HIDDEN, start=40))


def test_sinusoidal_position_encoding_matches_keras_hub():
    # keras-hub interleaves too: sine on even, cosine on odd features.
    x = data(BATCH, 50, HIDDEN)
    peer = keras_hub.layers.SinePositionEncoding()
    assert_close(layers.SinusoidalPositionEncoding()(x), peer(x))
    x = data(1, 3, HIDDEN)
    assert_close(
        layers.SinusoidalPositionEncoding()(x, start_index=9),
        peer(x, start_index=9),
    )


@pytest.mark.parametrize("shape", [(BATCH, LENGTH, HIDDEN), (BATCH, LENGTH, HEADS, 8)])
def test_rotary_embedding_matches_keras_hub(shape):
    x = data(*shape)
    ours = layers.RotaryEmbedding(max_wavelength=10000)
    peer = keras_hub.layers.RotaryEmbedding(max_wavelength=10000)
    assert_close(ours(x), peer(x))
    assert_close(ours(x, start_index=5), peer(x, start_index=5))
    scaled = layers.RotaryEmbedding(scaling_factor=2.0)
    peer_scaled = keras_hub.layers.RotaryEmbedding(scaling_factor=2.0)
    assert_close(scaled(x), peer_scaled(x))


def test_rotary_embedding_keeps_relative_positions():
    # RoPE's defining property: <rot(q, m), rot(k, n)> depends on m - n only.
    q, k = data(1, 1, 8), data(1, 1, 8, seed=1)
    rope = layers.RotaryEmbedding()

    def score(m, n):
        return float(
            np.sum(np.asarray(rope(q, start_index=m)) * np.asarray(rope(k, start_index=n)))
        )

    np.testing.assert_allclose(score(3, 1), score(10, 8), atol=1e-5)


def python_ngram_features(ids, table, vocabulary_size, order):
    """`HashedNGramEmbedding` by its documented formula, in Python's unbounded
    integers (no int32), summing numpy rows of `table`."""
    batch, length = ids.shape
    out = np.zeros((batch, length, table.shape[1]), "float64")
    for b in range(batch):
        for t in range(length):
            for n in range(2, order + 1):
                gram = [int(i) for i in ids[b, t - n + 1:t + 1]] if t >= n - 1 else []
                if not gram or 0 in gram:
                    continue
                hashed = 0
                for token in gram:
                    hashed = hashed * vocabulary_size + token
                out[b, t] += table[hashed % table.shape[0]]
    return out


@pytest.mark.parametrize("vocabulary_size,num_buckets,order", [
    (46340, 1_000_003, 2),  # The largest vocabulary: a*V+b is near 2**31.
    (20000, 100_000, 3),    # B*V = 2e9, near 2**31, for the third token.
    (50, 7, 4),             # Fewer buckets than ids: every n-gram collides.
])
def test_hashed_ngram_embedding_matches_the_formula_in_python_integers(
        vocabulary_size, num_buckets, order):
    layer = layers.HashedNGramEmbedding(vocabulary_size, num_buckets, 4, order=order)
    rng = np.random.default_rng(0)
    # Ids near the top of the vocabulary, where an int32 overflow would show.
    ids = rng.integers(vocabulary_size - 40, vocabulary_size, size=(3, 9)).astype("int32")
    ids[:, ::4] = rng.integers(1, 40, size=ids[:, ::4].shape)
    ids[1, 6:] = 0   # Right padding.
    ids[2, 3] = 0    # A padding id inside the text breaks the n-grams across it.
    layer.build(ids.shape)
    table = rng.normal(size=(num_buckets, 4)).astype("float32")
    layer.embeddings.assign(table)
    expected = python_ngram_features(ids, table.astype("float64"), vocabulary_size, order)
    np.testing.assert_allclose(_np(layer(ids)), expected, atol=1e-5)
    assert np.all(_np(layer(ids))[:, 0] == 0)  # Nothing ends at position 0.
