"""Encoder-decoder decoding (`translate_ids`, `translate`) with the options
of `generate_ids`: beam search against exhaustive search over full forward
passes, the repetition penalty and n-gram blocking against the rule applied
by hand, seeded sampling, stop strings, and bad options refused."""

import itertools

import keras
import numpy as np
import pytest

import keraslm
from keraslm.generation.translate import translate_ids as _translate_ids
from keraslm.text.word import WordTokenizer

from decoding_rules import blocked, penalized

START, STOP = 1, 2


def translate_ids(model, sources, steps, **options):
    """`translate_ids` as `translate` calls it: padding and the start id
    banned."""
    options.setdefault("banned_ids", (0, START))
    return _translate_ids(model, sources, steps, **options)


def seq2seq(vocabulary_size, seed=3, position_encoding="learned"):
    keras.utils.set_random_seed(seed)
    return keraslm.models.seq2seq_transformer(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=40, dropout=0.0,
        position_encoding=position_encoding)


def full_logits(model, source, targets):
    """Logits of full forward passes for a batch of target prefixes."""
    return np.array(model({
        "encoder_token_ids": np.array([source] * len(targets), "int32"),
        "decoder_token_ids": np.array(targets, "int32")}), "float64")


def reference(model, source, steps, process=lambda logits, ids: logits):
    """The argmax loop over full forward passes (padding and the start id
    banned), `process` applied to the logits with the ids so far."""
    target = [START]
    for _ in range(steps):
        last = full_logits(model, source, [target])[0, -1]
        last[[0, START]] = -np.inf
        token = int(process(last, target[1:]).argmax())
        if token == STOP:
            break
        target.append(token)
    return target[1:]


def has_repeated_ngram(ids, size):
    grams = [tuple(ids[i:i + size]) for i in range(len(ids) - size + 1)]
    return len(set(grams)) < len(grams)


SOURCES = [[5, 9, 11, 7, 2], [7, 2], [4, 4, 6, 2]]


@pytest.fixture(scope="module")
def repetitive():
    """A small-vocabulary model whose greedy translations repeat themselves."""
    return seq2seq(12)


def test_repetition_penalty_and_ngram_blocking_follow_their_rules(repetitive):
    steps = 20
    greedy = translate_ids(repetitive, SOURCES, steps, start_id=START, stop_id=STOP)
    assert greedy == [reference(repetitive, s, steps) for s in SOURCES]
    assert any(has_repeated_ngram(ids, 2) for ids in greedy)
    for options, process in (({"repetition_penalty": 1.6}, penalized(1.6)),
                             ({"no_repeat_ngram_size": 2}, blocked(2))):
        expected = [reference(repetitive, s, steps, process) for s in SOURCES]
        assert expected != greedy, options
        # The XLA loop and the NumPy processors of beam search agree.
        assert translate_ids(repetitive, SOURCES, steps, start_id=START, stop_id=STOP,
                             **options) == expected, options
        assert translate_ids(repetitive, SOURCES, steps, start_id=START, stop_id=STOP,
                             num_beams=1, **options) == expected, options
    blocked_ids = translate_ids(repetitive, SOURCES, steps, start_id=START, stop_id=STOP,
                                no_repeat_ngram_size=2)
    assert not any(has_repeated_ngram(ids, 2) for ids in blocked_ids)


def target_scores(model, source, vocabulary_size, length, length_penalty):
    """Every target of up to `length` ids (ending early only at STOP),
    scored as beam search scores hypotheses, from full forward passes."""
    tails = list(itertools.product(range(2, vocabulary_size), repeat=length))
    logits = full_logits(model, source, [[START] + list(t[:-1]) for t in tails])
    logits[..., [0, START]] = -np.inf  # padding and the start id are banned
    top = logits.max(axis=-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    scores = {}
    for tail, rows in zip(tails, log_probs):
        end = next(i + 1 for i, token in enumerate(tail) if token == STOP or i == length - 1)
        total = sum(rows[i, token] for i, token in enumerate(tail[:end]))
        scores[tail[:end]] = total / end ** length_penalty
    return scores


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_wide_beam_search_equals_exhaustive_search(length_penalty):
    model = seq2seq(5, seed=7)
    source, length = [3, 4, 2], 3
    scores = target_scores(model, source, 5, length, length_penalty)
    best = max(scores, key=scores.get)
    [found] = translate_ids(model, [source], length, start_id=START, stop_id=STOP,
                            num_beams=16, early_stopping=False,
                            length_penalty=length_penalty)
    assert found == list(best[:-1] if best[-1] == STOP else best)
    assert sorted(scores.values())[-1] > sorted(scores.values())[-2] + 1e-6


def test_beams_of_a_batch_equal_one_by_one_and_width_one_is_greedy():
    model = seq2seq(30)
    beams = translate_ids(model, SOURCES, 10, start_id=START, stop_id=STOP, num_beams=3)
    assert beams == [translate_ids(model, [s], 10, start_id=START, stop_id=STOP,
                                   num_beams=3)[0] for s in SOURCES]
    greedy = translate_ids(model, SOURCES, 10, start_id=START, stop_id=STOP)
    assert translate_ids(model, SOURCES, 10, start_id=START, stop_id=STOP,
                         num_beams=1) == greedy


def test_seeded_sampling_is_reproducible():
    model = seq2seq(30)
    draw = lambda seed: translate_ids(model, SOURCES, 12, start_id=START, stop_id=STOP,
                                      sampler="random", seed=seed)
    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    # top_k with k = 1 is greedy.
    assert translate_ids(model, SOURCES, 12, start_id=START, stop_id=STOP,
                         sampler="top_k", top_k=1, seed=5) == translate_ids(
        model, SOURCES, 12, start_id=START, stop_id=STOP)


@pytest.fixture(scope="module")
def word_model():
    texts = ["the cat sat on the mat", "a dog ran in the park", "the sun is hot"]
    tokenizer = WordTokenizer.train(texts, vocabulary_size=40)
    return seq2seq(tokenizer.vocabulary_size, seed=11), tokenizer


def test_translate_stop_strings_cut_each_row(word_model):
    model, tokenizer = word_model
    sources = ["the cat sat", "a dog ran in the park"]
    plain = keraslm.generation.translate(model, tokenizer, sources, 12,
                                         repetition_penalty=1.3)
    words = [text.split() for text in plain]
    assert all(len(w) >= 3 for w in words), plain
    stop = words[0][2]
    cut = keraslm.generation.translate(model, tokenizer, sources, 12,
                                       repetition_penalty=1.3, stop=stop)
    for full, short in zip(plain, cut):
        expected = full[:full.find(stop)] if stop in full else full
        assert short == expected, (full, short, stop)
    assert cut[0] != plain[0]


@pytest.mark.parametrize("options, message", [
    ({"num_beams": 0}, r"`num_beams` must be None .*Received: num_beams=0"),
    ({"num_beams": 2, "sampler": "top_k"}, r"does not sample.*sampler='top_k'"),
    ({"repetition_penalty": -1}, r"Received: repetition_penalty=-1"),
    ({"beams": 2}, r"Unknown decoding option\(s\) \['beams'\]"),
    ({"stop": ""}, r"`stop` must be a non-empty string"),
    ({"batch_size": 0}, r"Received: batch_size=0"),
])
def test_bad_translation_options_are_refused_before_decoding(word_model, options, message):
    model, tokenizer = word_model

    class Refuses:  # decoding would call the model
        max_sequence_length, position_encoding = 40, "learned"

        def __getattr__(self, name):
            raise AssertionError(f"the model was used ({name}) before the options were checked")

    with pytest.raises(ValueError, match=message):
        keraslm.generation.translate(Refuses(), tokenizer, ["the cat"], 10, **options)
