"""Decoding controls against independent computations: batches of prompts of
different lengths against one-by-one decoding, the cached loops (key/value
cache, LSTM/GRU state) against the uncached full-forward argmax loop, beam
search against exhaustive search, the repetition penalty and n-gram
blocking against the rule applied by hand, stop ids and stop strings."""

import itertools

import numpy as np
import pytest

import keras
import keraslm
from keraslm.generation import generate, generate_ids

from decoding_rules import blocked, penalized

PROMPTS = [[5, 17, 9, 33, 21], [7], [12, 3, 40]]


def transformer(position_encoding, vocabulary_size=60):
    keras.utils.set_random_seed(1)
    return keraslm.models.transformer_lm(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=48, position_encoding=position_encoding)


def recurrent(cell_type, vocabulary_size=60):
    keras.utils.set_random_seed(2)
    return keraslm.models.lstm_lm(vocabulary_size=vocabulary_size, hidden_dim=16,
                                  units=24, num_layers=2, cell_type=cell_type)


MODELS = {
    "learned": lambda: transformer("learned"),
    "sinusoidal": lambda: transformer("sinusoidal"),
    "rotary": lambda: transformer("rotary"),
    "lstm": lambda: recurrent("lstm"),
    "gru": lambda: recurrent("gru"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    return MODELS[request.param]()


def last_logits(model, ids):
    """The last position's logits of the whole sequence: no cache, no state."""
    return np.array(model(np.array([ids], "int32")), dtype="float64")[0, -1]


def reference(model, prompt, steps, process=lambda logits, ids: logits, stop_ids=()):
    """Greedy decoding by hand: a full forward pass per token."""
    ids, new = list(prompt), []
    for _ in range(steps):
        logits = process(last_logits(model, ids), ids)
        logits[0] = -np.inf
        token = int(np.argmax(logits))
        if token in stop_ids:
            break
        new.append(token)
        ids.append(token)
    return new


def test_cached_and_batched_greedy_equal_the_uncached_argmax_loop(model):
    """The XLA loop over the cache (Transformer, three position encodings)
    or the carried state (LSTM, GRU) gives the tokens of rerunning the whole
    sequence per token; a batch of prompts of different lengths (left-padded)
    gives what each prompt gives alone."""
    alone = [generate_ids(model, prompt, 14) for prompt in PROMPTS]
    assert alone == [reference(model, prompt, 14) for prompt in PROMPTS]
    assert generate_ids(model, PROMPTS, 14) == alone
    # Each row stops on its own: a stop id one row produces early.
    stop = alone[2][2]
    stopped = generate_ids(model, PROMPTS, 14, stop_ids=[stop])
    assert stopped == [row[:row.index(stop)] if stop in row else row for row in alone]
    assert len(stopped[2]) == alone[2].index(stop)


@pytest.fixture(scope="module", params=["rotary", "lstm"])
def small_model(request):
    return MODELS[request.param]()


def test_beam_width_one_equals_greedy(small_model):
    greedy = generate_ids(small_model, PROMPTS, 12)
    assert generate_ids(small_model, PROMPTS, 12, num_beams=1) == greedy
    stop = greedy[0][4]
    assert (generate_ids(small_model, PROMPTS[0], 12, num_beams=1, stop_ids=[stop])
            == generate_ids(small_model, PROMPTS[0], 12, stop_ids=[stop])
            == greedy[0][:greedy[0].index(stop)])


def test_top_k_of_one_and_seeded_sampling():
    model = MODELS["lstm"]()
    greedy = generate_ids(model, PROMPTS, 12)
    assert generate_ids(model, PROMPTS, 12, sampler="top_k", top_k=1, seed=9) == greedy
    sampled = generate_ids(model, PROMPTS, 12, sampler="random", seed=3)
    assert sampled == generate_ids(model, PROMPTS, 12, sampler="random", seed=3)
    assert sampled != generate_ids(model, PROMPTS, 12, sampler="random", seed=4)


def ngrams(ids, size):
    return [tuple(ids[i:i + size]) for i in range(len(ids) - size + 1)]


@pytest.fixture(scope="module")
def repetitive():
    """A Transformer whose greedy output repeats itself (vocabulary 12)."""
    return transformer("learned", vocabulary_size=12)


def test_repetition_penalty_follows_the_ctrl_rule(repetitive):
    prompts = [[3, 4, 5, 3], [6]]
    greedy = generate_ids(repetitive, prompts, 20)
    assert generate_ids(repetitive, prompts, 20, repetition_penalty=1.0) == greedy
    expected = [reference(repetitive, p, 20, penalized(1.6)) for p in prompts]
    assert expected != greedy
    assert generate_ids(repetitive, prompts, 20, repetition_penalty=1.6) == expected
    # The NumPy processors of beam search follow the same rule.
    assert generate_ids(repetitive, prompts, 20, repetition_penalty=1.6,
                        num_beams=1) == expected


def repeats_an_ngram(prompt, new, size):
    """Whether an n-gram ending at a new id occurred before it."""
    ids = prompt + new
    return any(tuple(ids[end - size + 1:end + 1]) in ngrams(ids[:end], size)
               for end in range(max(len(prompt), size - 1), len(ids)))


@pytest.mark.parametrize("size", [1, 3])
def test_no_repeat_ngram_size_blocks_repeats(repetitive, size):
    prompts = [[3, 4, 5, 3, 4], [6]]
    steps = {1: 6, 3: 25}[size]
    plain = generate_ids(repetitive, prompts, steps)
    assert any(repeats_an_ngram(p, n, size) for p, n in zip(prompts, plain))
    generated = generate_ids(repetitive, prompts, steps, no_repeat_ngram_size=size)
    expected = [reference(repetitive, p, steps, blocked(size)) for p in prompts]
    assert generated == expected
    assert generate_ids(repetitive, prompts, steps, no_repeat_ngram_size=size,
                        num_beams=1) == expected
    for prompt, new in zip(prompts, generated):
        assert len(new) == steps and not repeats_an_ngram(prompt, new, size)


def sequence_scores(model, prompt, vocabulary_size, length, stop_ids, length_penalty):
    """Every continuation of up to `length` ids (ending early only at a stop
    id), scored by summed log-probability / length ** length_penalty, from
    one full forward pass over all of them."""
    tails = list(itertools.product(range(1, vocabulary_size), repeat=length))
    logits = np.array(model(np.array([prompt + list(t) for t in tails], "int32")),
                      "float64")[:, len(prompt) - 1:-1]
    logits[..., 0] = -np.inf
    top = logits.max(axis=-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    scores = {}
    for tail, rows in zip(tails, log_probs):
        end = next(i + 1 for i, token in enumerate(tail) if token in stop_ids or i == length - 1)
        total = sum(rows[i, token] for i, token in enumerate(tail[:end]))
        scores[tail[:end]] = total / end ** length_penalty
    return scores


@pytest.mark.parametrize("stop_ids, length_penalty", [((), 1.0), ((3,), 0.0), ((3,), 2.0)])
def test_wide_beam_search_equals_exhaustive_search(stop_ids, length_penalty):
    """With as many beams as prefixes, beam search is exact: it returns the
    best-scoring continuation of all, stop ids and length penalty included."""
    model = transformer("rotary", vocabulary_size=5)
    prompt, length = [1, 2], 3
    scores = sequence_scores(model, prompt, 5, length, stop_ids, length_penalty)
    best = max(scores, key=scores.get)
    found = generate_ids(model, prompt, length, num_beams=16, stop_ids=stop_ids,
                         length_penalty=length_penalty, early_stopping=False)
    assert found == list(best[:-1] if best[-1] in stop_ids else best)
    assert sorted(scores.values())[-1] > sorted(scores.values())[-2] + 1e-6
    if stop_ids:
        assert any(tail[-1] in stop_ids for tail in scores)


def test_beam_search_of_a_batch_equals_one_by_one():
    model = transformer("learned")
    prompts = [[5, 3, 1], [4], [7, 2]]
    beams = generate_ids(model, prompts, 8, num_beams=3)
    assert beams == [generate_ids(model, p, 8, num_beams=3) for p in prompts]
    assert beams != generate_ids(model, prompts, 8)


def test_model_without_cache_or_state_is_rerun():
    """Any causal Keras model decodes (one full pass per token), batched too."""
    inner = transformer("learned")
    model = keras.Model(inner.input, inner.output)
    assert not hasattr(model, "call_with_cache")
    batched = generate_ids(model, PROMPTS, 8)
    assert batched == [reference(inner, p, 8) for p in PROMPTS]
    assert generate_ids(model, PROMPTS, 8, num_beams=1) == batched


@pytest.fixture(scope="module")
def character_model():
    text = "To be, or not to be, that is the question."
    tokenizer = keraslm.text.CharacterTokenizer.train([text])
    keras.utils.set_random_seed(4)
    model = keraslm.models.transformer_lm(
        vocabulary_size=tokenizer.vocabulary_size, num_layers=1, num_heads=2,
        hidden_dim=16, intermediate_dim=32, max_sequence_length=64)
    return model, tokenizer


def test_stop_strings_end_each_row_where_they_first_appear(character_model):
    model, tokenizer = character_model
    prompts = ["To be", "the q"]
    full = generate(model, tokenizer, prompts, 30, newline_at_eos=True)
    assert full == [generate(model, tokenizer, p, 30, newline_at_eos=True) for p in prompts]
    continuation = full[0][len(prompts[0]):]
    stop = continuation[11:13]  # appears after the first XLA chunk of 8 ids
    first = continuation.find(stop)
    cut = generate(model, tokenizer, prompts, 30, newline_at_eos=True, stop=[stop, "\x00"])
    assert cut[0] == prompts[0] + continuation[:first]
    other = full[1][len(prompts[1]):]
    assert cut[1] == prompts[1] + (other[:other.find(stop)] if stop in other else other)
    # The same from beam search (width 1), which checks after every id.
    assert generate(model, tokenizer, prompts[0], 30, newline_at_eos=True, stop=stop,
                    num_beams=1) == cut[0]
    # The row stopped decoding: its ids end with the one that completed the string.
    plain = generate_ids(model, tokenizer.encode(prompts[0]), 30)
    stop = tokenizer.decode(plain[12:14])
    new = generate_ids(model, tokenizer.encode(prompts[0]), 30,
                       stop_condition=lambda ids: stop in tokenizer.decode(ids))
    assert new == plain[:len(new)] and len(new) <= 14
    assert stop in tokenizer.decode(new) and stop not in tokenizer.decode(new[:-1])


def test_stop_ids_and_stop_condition_together():
    """A row ended by a stop id inside a chunk of the XLA loop stays ended
    while the stop condition is checked between chunks."""
    model = transformer("rotary")
    alone = generate_ids(model, PROMPTS, 30)
    # An id that ends row 2 early (first chunk) and row 0 late or never.
    stop = next(token for token in alone[2][:6]
                if token not in alone[0][:12])
    expected = [row[:row.index(stop)] if stop in row else row for row in alone]
    assert len(expected[2]) < 8 and len(expected[0]) >= 12
    assert generate_ids(model, PROMPTS, 30, stop_ids=[stop],
                        stop_condition=lambda ids: False) == expected
    assert generate_ids(model, PROMPTS, 30, stop_ids=[stop],
                        stop_condition=lambda ids: len(ids) >= 10) == [
        row[:10] for row in expected]


@pytest.mark.parametrize("options, message", [
    (dict(repetition_penalty=0), "`repetition_penalty` must be a number > 0"),
    (dict(no_repeat_ngram_size=-1), "`no_repeat_ngram_size` must be an integer >= 0"),
    (dict(num_beams=0), "`num_beams` must be None"),
    (dict(num_beams=2, sampler="top_k"), "`sampler` must be 'greedy' with it. Received: "
                                         "num_beams=2, sampler='top_k'"),
    (dict(stop_ids=[3, -1]), "`stop_ids` must be a list of integer ids"),
    (dict(length_penalty="long"), "Received: length_penalty='long'"),
    (dict(early_stopping=1), "`early_stopping` must be True or False"),
])
def test_bad_decoding_options_are_refused_before_decoding(options, message):
    class Untouchable:  # decoding would call the model
        def __call__(self, *args, **kwargs):
            raise AssertionError("decoding started")

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        generate_ids(Untouchable(), [5, 6], 5, **options)
    with pytest.raises(ValueError, match="prompt 1"):
        generate_ids(Untouchable(), [[5, 6], []], 5)


def test_retracing_the_loop_for_new_shapes_is_not_reported():
    """Each batch size and cache length traces the XLA loop once, by design;
    TensorFlow's warning about frequent retracing is kept from users for
    that loop only."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        model = transformer("learned")
        for rows in range(1, 8):
            generate_ids(model, [[5] * (1 + 16 * (rows % 2))] * rows, 2)
        logger.warning("5 out of the last 5 calls to <function other at 0x1> triggered "
                       "tf.function retracing.")
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in records]
    assert not any("_compiled_loop" in message or "prefill" in message
                   for message in messages), messages
    assert any("function other" in message for message in messages)
