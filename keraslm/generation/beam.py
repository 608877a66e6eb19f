"""Beam search for causal LMs (`generate_ids(..., num_beams=W)`).

Each prompt keeps the `W` best partial continuations (beams) by the sum of
their ids' log-probabilities (after the logits processors of
`keraslm.generation.processors`). At every step the `2W` best one-id
extensions of all beams of a row are ranked: one ending in a stop id (or
satisfying `stop_condition`) becomes a finished hypothesis if it ranks in
the first `W`, the others become the next beams until there are `W`. A
hypothesis is scored `sum_log_probs / length ** length_penalty`, `length`
counting its new ids and its stop id, so `length_penalty > 0` favours
longer outputs and `0` compares raw sums. A row stops when it has `W`
finished hypotheses (`early_stopping=True`) or, with
`early_stopping=False`, when moreover no running beam, normalized at the
current length, beats the worst of them (the heuristic of Hugging Face's
`BeamSearchScorer`). At `max_new_tokens`, running beams count as
hypotheses too. The best hypothesis of each row is returned.

With `W = 1` the single beam is the argmax at every step: the ids of greedy
decoding.

This loop runs in Python over the compiled decoder step
(`keraslm.generation.loop._compiled_step`), a `(batch * W)`-row step per
new id with the cache or state gathered along the beams; it is not part of
the XLA `while_loop`.

Example:

```python
keraslm.generation.generate_ids(model, [5, 17, 9], 30, num_beams=4,
                                length_penalty=1.0)
```
"""

import numpy as np

from keraslm.generation.processors import process_row


def beam_search(decoder, step, prompts, batch, left_padding, max_new_tokens,
                cache_length, *,
                num_beams, length_penalty, early_stopping, stop_ids, banned_ids,
                repetition_penalty, no_repeat_ngram_size, stop_condition):
    """The best continuation of each prompt: a list of lists of new ids."""
    rows, width = len(prompts), num_beams
    start = batch.shape[1]
    logits, state = decoder.prefill(batch, left_padding, cache_length)
    expand = np.repeat(np.arange(rows), width)
    logits = np.asarray(logits, "float32")[expand]
    state = decoder.reorder(state, expand)
    prompts = [list(prompts[row]) for row in expand]
    new = [[] for _ in expand]
    scores = np.tile(np.array([0.0] + [-np.inf] * (width - 1)), rows)
    finished = [[] for _ in range(rows)]  # (score, ids)
    done = np.zeros(rows, bool)
    stop_ids = set(stop_ids)

    def normalized(score, length):
        return score / max(length, 1) ** length_penalty

    for index in range(max_new_tokens):
        log_probs = np.stack([
            log_softmax(process_row(logits[beam], prompts[beam] + new[beam], banned_ids,
                                    repetition_penalty, no_repeat_ngram_size))
            for beam in range(rows * width)])
        candidates = (scores[:, None] + log_probs).reshape(rows, -1)
        vocabulary_size = log_probs.shape[1]
        sources = np.repeat(np.arange(rows) * width, width)  # done rows stay put
        tokens = np.zeros(rows * width, "int32")
        next_scores = np.full(rows * width, -np.inf)
        next_new = list(new)
        for row in range(rows):
            if done[row]:
                continue
            order = np.argsort(-candidates[row], kind="stable")[:2 * width]
            chosen = 0
            for rank, flat in enumerate(order):
                score = candidates[row, flat]
                if score == -np.inf:
                    break
                beam, token = row * width + flat // vocabulary_size, int(flat % vocabulary_size)
                if token in stop_ids:
                    if rank < width:
                        finished[row].append((normalized(score, len(new[beam]) + 1),
                                              new[beam]))
                    continue
                ids = new[beam] + [token]
                if stop_condition is not None and stop_condition(ids):
                    if rank < width:
                        finished[row].append((normalized(score, len(ids)), ids))
                    continue
                slot = row * width + chosen
                sources[slot], tokens[slot], next_scores[slot] = beam, token, score
                next_new[slot] = ids
                chosen += 1
                if chosen == width:
                    break
            for slot in range(row * width + chosen, (row + 1) * width):
                sources[slot], next_new[slot] = row * width, new[row * width]
            finished[row] = sorted(finished[row], key=lambda item: -item[0])[:width]
            if len(finished[row]) >= width or chosen == 0:
                best_running = normalized(next_scores[row * width], index + 1)
                done[row] = (early_stopping or chosen == 0
                             or finished[row][-1][0] >= best_running)
        for row in np.flatnonzero(done):
            next_scores[row * width:(row + 1) * width] = -np.inf
        scores, new = next_scores, next_new
        if done.all() or index == max_new_tokens - 1:
            break
        state = decoder.reorder(state, sources)
        logits, state = step(_tokens(tokens, decoder), state, _index(start + index, decoder))
        logits = np.asarray(logits, "float32")
    outputs = []
    for row in range(rows):
        hypotheses = list(finished[row])
        if not done[row]:
            hypotheses += [(normalized(scores[beam], len(new[beam])), new[beam])
                           for beam in range(row * width, (row + 1) * width)
                           if scores[beam] > -np.inf]
        outputs.append(list(max(hypotheses, key=lambda item: item[0])[1])
                       if hypotheses else [])
    return outputs


def log_softmax(logits):
    top = np.max(logits)
    if top == -np.inf:
        return logits
    shifted = logits - top
    return shifted - np.log(np.sum(np.exp(shifted)))


def _tokens(tokens, decoder):
    if not decoder.compiled:
        return tokens
    from keras import ops

    return ops.convert_to_tensor(tokens, "int32")


def _index(index, decoder):
    if not decoder.compiled:
        return index
    from keras import ops

    return ops.convert_to_tensor(index, "int32")
