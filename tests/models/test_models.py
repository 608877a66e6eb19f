"""Model builders: sizes, causality, padding, caches, saving, learning on real text."""

import numpy as np
import pytest

import keras
import keraslm
from keraslm.models import BUILDERS, PRESETS
from keraslm.models.presets import PARAMETERS_AT_VOCABULARY_8192

import shared_data
SMALL = dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
             max_sequence_length=64)


def encoder_block(d, f):
    return 4 * d * d + 4 * d + 2 * d * f + f + d + 4 * d


def expected_parameters(builder, V, num_layers=1, hidden_dim=None, intermediate_dim=None,
                        max_sequence_length=None, units=None, num_heads=None):
    d, f, L, T = hidden_dim, intermediate_dim, num_layers, max_sequence_length
    if builder == "transformer_lm":
        return V * d + T * d + L * encoder_block(d, f) + 2 * d
    if builder == "transformer_encoder":
        return V * d + T * d + 2 * d + L * encoder_block(d, f)
    if builder == "seq2seq_transformer":
        return 2 * V * d + L * encoder_block(d, f) + L * (encoder_block(d, f) + 4 * d * d + 6 * d)
    u = units
    recurrent = lambda n: 4 * (n * u + u * u + u)  # noqa: E731
    return V * d + recurrent(d) + (L - 1) * recurrent(u) + u * V + V


@pytest.mark.parametrize("builder", sorted(BUILDERS))
@pytest.mark.parametrize("preset", ["tiny", "small", "base"])
def test_preset_parameter_counts(builder, preset):
    model = BUILDERS[builder](vocabulary_size=8192, preset=preset)
    count = model.count_params()
    assert count == expected_parameters(builder, 8192, **PRESETS[builder][preset])
    assert count == PARAMETERS_AT_VOCABULARY_8192[builder][preset]


def test_builder_errors_are_explained():
    with pytest.raises(ValueError, match="needs `vocabulary_size`"):
        keraslm.models.transformer_lm(preset="tiny")
    with pytest.raises(ValueError, match="Unknown transformer_lm preset 'tinyy'.*Did you mean 'tiny'"):
        keraslm.models.transformer_lm(vocabulary_size=10, preset="tinyy")
    with pytest.raises(ValueError, match="Received: position_encoding='alibi'"):
        keraslm.models.transformer_lm(vocabulary_size=10, position_encoding="alibi", **SMALL)


def shakespeare_ids(length, offset=0):
    """Real text as byte ids + 1 (0 stays padding)."""
    with open(shared_data.path("shakespeare", "train.txt"), "rb") as handle:
        handle.seek(1_000_000 + offset)
        data = handle.read(length)
    return np.frombuffer(data, np.uint8).astype("int32") + 1


def build(name, **overrides):
    arguments = dict(SMALL)
    if name == "lstm_lm":
        arguments = dict(hidden_dim=32, units=48, num_layers=2)
    arguments.update(overrides)
    return BUILDERS[name](vocabulary_size=257, **arguments)


def inputs_for(name, ids):
    if name == "seq2seq_transformer":
        return {"encoder_token_ids": ids, "decoder_token_ids": ids[:, ::-1].copy()}
    return ids


@pytest.mark.parametrize("position_encoding", ["learned", "sinusoidal", "rotary"])
@pytest.mark.parametrize("normalization", ["pre", "post"])
def test_transformer_lm_is_causal_and_cache_matches(position_encoding, normalization):
    model = build("transformer_lm", position_encoding=position_encoding,
                  normalization=normalization)
    ids = shakespeare_ids(24).reshape(2, 12)
    full = np.asarray(model(ids))
    changed = ids.copy()
    changed[:, 7:] = 1 + (changed[:, 7:] + 50) % 256
    np.testing.assert_allclose(np.asarray(model(changed))[:, :7], full[:, :7], atol=1e-5)
    cache = model.empty_cache(2, 12)
    steps = []
    for index in range(12):
        logits, _, cache = model.call_with_cache(ids[:, index:index + 1], cache, index)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4)


def test_seq2seq_cache_matches_full_decoding():
    model = build("seq2seq_transformer")
    source = shakespeare_ids(20).reshape(2, 10)
    source[1, 6:] = 0
    target = shakespeare_ids(16, offset=500).reshape(2, 8)
    full = np.asarray(model({"encoder_token_ids": source, "decoder_token_ids": target}))
    encoded, padding_mask = model.encode(source)
    cross = model.cross_attention_cache(encoded)
    cache = model.empty_cache(2, 8)
    steps = []
    for index in range(8):
        logits, _, cache = model.call_with_cache(target[:, index:index + 1], padding_mask,
                                                 cache, cross, index)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_padding_does_not_change_real_tokens(name):
    model = build(name)
    ids = shakespeare_ids(20).reshape(2, 10)
    padded = np.pad(ids, ((0, 0), (0, 5)))
    if name == "seq2seq_transformer":
        # Pad the source only; the target positions stay the same.
        out = model({"encoder_token_ids": ids, "decoder_token_ids": ids})
        out_padded = model({"encoder_token_ids": padded, "decoder_token_ids": ids})
        np.testing.assert_allclose(np.asarray(out_padded), np.asarray(out), atol=1e-5)
        return
    np.testing.assert_allclose(np.asarray(model(padded))[:, :10], np.asarray(model(ids)),
                               atol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_keras_round_trip(name, tmp_path):
    model = build(name)
    ids = inputs_for(name, shakespeare_ids(30).reshape(3, 10))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keraslm.load_model(path)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(restored(ids)), np.asarray(model(ids)))


@pytest.mark.parametrize("name", ["transformer_lm", "transformer_encoder",
                                  "seq2seq_transformer"])
def test_attention_dropout_reaches_every_attention_layer(name, tmp_path):
    model = BUILDERS[name](vocabulary_size=300, preset="tiny", dropout=0.1,
                           attention_dropout=0.0)
    attentions = [layer for layer in model._flatten_layers()
                  if isinstance(layer, keraslm.layers.MultiHeadAttention)]
    assert attentions and all(layer.dropout == 0.0 for layer in attentions)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    assert keraslm.load_model(path).get_config()["attention_dropout"] == 0.0


def masked_lm_batch(ids, rng):
    """15% of positions replaced by a mask id (256); labels only there."""
    masked = rng.random(ids.shape) < 0.15
    inputs = np.where(masked, 256, ids)
    labels = np.where(masked, ids, 0)
    return inputs, labels


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_loss_falls_on_shakespeare(name):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = build(name, dropout=0.0)
    ids = shakespeare_ids(64 * 33).reshape(64, 33)
    if name == "transformer_encoder":
        hidden = model.output
        logits = model.token_embedding(hidden, reverse=True)
        trainable = keras.Model(model.input, logits)
        x, y = masked_lm_batch(ids[:, :32], rng)
    elif name == "seq2seq_transformer":
        trainable = model
        x = {"encoder_token_ids": ids[:, :16], "decoder_token_ids": ids[:, 16:32]}
        y = ids[:, 17:33]
    else:
        trainable = model
        x, y = ids[:, :-1], ids[:, 1:]
    trainable.compile(optimizer=keraslm.registry.optimizers.build("adam", learning_rate=3e-3),
                      loss=keraslm.registry.losses.build("masked_sparse_categorical_crossentropy"))
    before = trainable.evaluate(x, y, verbose=0)
    trainable.fit(x, y, batch_size=16, epochs=6, verbose=0)
    after = trainable.evaluate(x, y, verbose=0)
    assert after < before - 0.5, (before, after)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_and_xla_train_step(policy):
    keras.config.set_dtype_policy(policy)
    try:
        model = build("transformer_lm")
    finally:
        keras.config.set_dtype_policy("float32")
    ids = shakespeare_ids(8 * 33).reshape(8, 33)
    model.compile(optimizer="adam", jit_compile=True,
                  loss=keraslm.registry.losses.build("masked_sparse_categorical_crossentropy"))
    logits = model.predict(ids[:, :-1], verbose=0)
    assert logits.dtype.name in ("bfloat16", "float16")
    assert np.isfinite(logits.astype("float32")).all()
    history = model.fit(ids[:, :-1], ids[:, 1:], epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_transformer_encoder_with_hashed_bigrams(tmp_path):
    plain = BUILDERS["transformer_encoder"](vocabulary_size=257, **SMALL)
    model = BUILDERS["transformer_encoder"](vocabulary_size=257, ngram_buckets=1000,
                                            **SMALL)
    assert model.count_params() == plain.count_params() + 1000 * SMALL["hidden_dim"]
    ids = shakespeare_ids(20).reshape(2, 10)
    padded = np.pad(ids, ((0, 0), (0, 5)))
    np.testing.assert_allclose(np.asarray(model(padded))[:, :10], np.asarray(model(ids)),
                               atol=1e-5)
    model.save(tmp_path / "ngram.keras")
    restored = keraslm.load_model(tmp_path / "ngram.keras")
    assert restored.get_config()["ngram_buckets"] == 1000
    np.testing.assert_array_equal(np.asarray(restored(ids)), np.asarray(model(ids)))
    # With no Transformer layer: token, bigram and position tables + a layer norm.
    bag = BUILDERS["transformer_encoder"](vocabulary_size=257, ngram_buckets=1000,
                                          **dict(SMALL, num_layers=0))
    assert bag.count_params() == (257 + 1000 + 64) * 32 + 2 * 32
    with pytest.raises(ValueError, match="Received: ngram_buckets=-1"):
        BUILDERS["transformer_encoder"](vocabulary_size=257, ngram_buckets=-1, **SMALL)
    with pytest.raises(ValueError, match="only applies with `ngram_buckets` > 0"):
        BUILDERS["transformer_encoder"](vocabulary_size=257, ngram_order=3, **SMALL)
