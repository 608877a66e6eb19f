"""Generation: the compiled decoding loop against step-by-step full forward passes,
and the samplers' draws against the distributions they claim."""

import numpy as np
import pytest

import keras
import keraslm
from keraslm.generation import generate_ids
from keraslm.generation.samplers import _tf_sample

PROMPT = [5, 17, 9, 33]


@pytest.fixture(scope="module", params=["rotary", "learned"])
def model(request):
    keras.utils.set_random_seed(1)
    return keraslm.models.transformer_lm(
        vocabulary_size=300, num_layers=2, num_heads=2, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=64, position_encoding=request.param)


def full_forward_logits(model, ids):
    """Last-position logits from the whole sequence: no cache, no loop."""
    return np.array(model(np.array([ids], "int32")), dtype="float64")[0, -1]


def test_greedy_equals_argmax_of_full_forward_passes(model):
    generated = generate_ids(model, PROMPT, 40, banned_ids=(0, 7))
    ids, expected = list(PROMPT), []
    for _ in range(40):
        logits = full_forward_logits(model, ids)
        logits[[0, 7]] = -np.inf
        expected.append(int(np.argmax(logits)))
        ids.append(expected[-1])
    assert generated == expected


def test_stop_id_ends_decoding_and_is_not_returned(model):
    greedy = generate_ids(model, PROMPT, 20)
    stop = greedy[3]
    first = greedy.index(stop)
    assert generate_ids(model, PROMPT, 20, stop_id=stop) == greedy[:first]


@pytest.mark.parametrize("sampler, options", [("top_k", dict(top_k=3)),
                                              ("top_p", dict(top_p=0.05)),
                                              ("random", dict(temperature=0.7))])
def test_sampled_tokens_come_from_the_allowed_set(model, sampler, options):
    generated = generate_ids(model, PROMPT, 25, sampler=sampler, seed=3, **options)
    assert len(generated) == 25
    assert generated == generate_ids(model, PROMPT, 25, sampler=sampler, seed=3, **options)
    assert generated != generate_ids(model, PROMPT, 25, sampler=sampler, seed=4, **options)
    ids = list(PROMPT)
    for token in generated:
        logits = full_forward_logits(model, ids)
        logits[0] = -np.inf
        order = np.argsort(-logits)
        if sampler == "top_k":
            assert token in order[:3]
        elif sampler == "top_p":
            probabilities = np.exp(logits - logits.max())
            probabilities /= probabilities.sum()
            before = np.cumsum(probabilities[order]) - probabilities[order]
            assert token in order[before < 0.05 + 1e-6]
        ids.append(token)


@pytest.mark.parametrize("options, message", [
    (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(temperature=0), "temperature"), (dict(max_new_tokens=-1), "max_new_tokens"),
])
def test_bad_sampler_settings_are_refused(model, options, message):
    arguments = dict(dict(max_new_tokens=5), **options)
    with pytest.raises(ValueError, match=f"`{message}` must be"):
        generate_ids(model, PROMPT, **arguments)


def draws(logits, sampler, count, **options):
    import tensorflow as tf

    settings = {"temperature": 1.0, "top_k": 40, "top_p": 0.9, **options}

    @tf.function
    def sample_all():
        return tf.map_fn(
            lambda seed: _tf_sample(
                tf.constant(logits, tf.float32), sampler,
                tf.constant(settings["temperature"], tf.float32),
                tf.constant(settings["top_k"], tf.int32),
                tf.constant(settings["top_p"], tf.float32), tf.stack([seed, 0])),
            tf.range(count), fn_output_signature=tf.int32)

    return np.bincount(sample_all().numpy(), minlength=len(logits)) / count


def softmax(logits):
    weights = np.exp(logits - np.max(logits))
    return weights / weights.sum()


LOGITS = np.log([0.35, 0.25, 0.15, 0.1, 0.08, 0.04, 0.02, 0.01])


@pytest.mark.parametrize("sampler, options, expected", [
    ("random", {}, softmax(LOGITS)),
    ("random", dict(temperature=0.5), softmax(LOGITS / 0.5)),
    ("top_k", dict(top_k=3), softmax(np.where(np.arange(8) < 3, LOGITS, -np.inf))),
    # 0.35 + 0.25 < 0.7 <= 0.35 + 0.25 + 0.15: the nucleus is the first three.
    ("top_p", dict(top_p=0.7), softmax(np.where(np.arange(8) < 3, LOGITS, -np.inf))),
])
def test_sampler_draws_follow_their_distribution(sampler, options, expected):
    observed = draws(LOGITS, sampler, 20_000, **options)
    # 20,000 draws: each frequency is within ~4 standard errors (<= 0.014).
    np.testing.assert_allclose(observed, expected, atol=0.014)
    assert observed[expected == 0].sum() == 0


@pytest.mark.parametrize("position_encoding", ["sinusoidal", "learned"])
def test_translation_equals_argmax_of_full_forward_passes(position_encoding):
    """The cached encoder-decoder decoding (one encoder pass, one position per
    step) gives the tokens of re-running the whole model on the growing
    target at every step; a batch of two sources of different lengths
    decodes as each source alone."""
    from keraslm.generation.translate import translate_ids

    keras.utils.set_random_seed(3)
    model = keraslm.models.seq2seq_transformer(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=32, dropout=0.0,
        position_encoding=position_encoding)
    sources = [[5, 9, 11, 30, 2], [7, 2]]
    start, stop, steps = 1, 2, 12

    def reference(source):
        target = [start]
        for _ in range(steps):
            logits = model({"encoder_token_ids": np.array([source], "int32"),
                            "decoder_token_ids": np.array([target], "int32")})
            last = np.array(logits[0, -1], "float32")
            last[0] = -np.inf
            token = int(last.argmax())
            if token == stop:
                break
            target.append(token)
        return target[1:]

    expected = [reference(source) for source in sources]
    assert translate_ids(model, sources, steps, start_id=start, stop_id=stop) == expected
    assert [translate_ids(model, [s], steps, start_id=start, stop_id=stop)[0]
            for s in sources] == expected
    assert sum(map(len, expected)) > 0
    with pytest.raises(ValueError, match="at least one token"):
        translate_ids(model, [[5], []], steps, start_id=start, stop_id=stop)
