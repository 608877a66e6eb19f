"""How the decoding loops run one kind of causal LM, one step at a time.

A decoder wraps a model with three methods that every loop
(`keraslm.generation.loop`, `keraslm.generation.beam` and the step-by-step
loop of `keraslm.generation.api`) uses:

- `prefill(batch, left_padding, total_length)`: runs the left-padded
  prompts `(batch, prompt_length)` and returns the logits of their last
  position `(batch, vocab)` and the decoding state.
- `step(token_ids, state, index)`: runs one new id per row `(batch,)`,
  written at slot `index`, and returns `(logits, state)`; traceable, so the
  loops compile it.
- `reorder(state, indices)`: the state of rows `indices` (beam search).

`decoder_for(model)` picks one:

- `CacheDecoder`: models with `call_with_cache` and `empty_cache`
  (`keraslm.models.TransformerLM`): a key/value cache; rows of a batch
  carry their left padding, which is masked and left out of the positions.
- `StateDecoder`: models with `call_with_state` (`keraslm.models.LSTMLM`):
  the recurrent state; padding (id 0) leaves it unchanged.
- `Seq2SeqDecoder`: encoder-decoder models
  (`keraslm.models.Seq2SeqTransformer`), built with the batch of sources:
  the encoder and the cross-attention keys/values run once, in `prefill`;
  the decoder's self-attention has a key/value cache.
- `RerunDecoder`: any other causal LM, run on the whole (right-padded)
  sequence at every step. Correct, but each token costs the whole sequence.

Example:

```python
decoder = keraslm.generation.decoders.decoder_for(model)
logits, state = decoder.prefill(np.array([[5, 17, 9]]), None, 20)
```
"""

import numpy as np


def decoder_for(model):
    """The decoder for `model` (see the module docstring)."""
    if hasattr(model, "call_with_cache") and hasattr(model, "empty_cache"):
        return CacheDecoder(model)
    if hasattr(model, "call_with_state"):
        return StateDecoder(model)
    return RerunDecoder(model)


class CacheDecoder:
    """A key/value cache (`call_with_cache`); the state is `(cache,)` or,
    for left-padded rows, `(cache, left_padding)`."""

    compiled = True
    #: `prefill` can run as one XLA program (`loop._compiled_prefill`).
    prefill_in_xla = True

    def __init__(self, model):
        self.model = model

    def check_length(self, longest_prompt, max_new_tokens):
        limit = getattr(self.model, "max_sequence_length", None)
        if (getattr(self.model, "position_encoding", None) == "learned"
                and longest_prompt + max_new_tokens > limit):
            raise ValueError(
                f"Prompt ({longest_prompt} tokens) + max_new_tokens ({max_new_tokens}) "
                f"exceeds the model's max_sequence_length ({limit}).")

    def prefill(self, batch, left_padding, total_length):
        from keras import ops

        cache = self.model.empty_cache(batch.shape[0], total_length)
        if left_padding is None:
            logits, _, cache = self.model.call_with_cache(
                ops.convert_to_tensor(batch, "int32"), cache, 0)
            return logits[:, -1], (cache,)
        padding = ops.convert_to_tensor(left_padding, "int32")
        logits, _, cache = self.model.call_with_cache(
            ops.convert_to_tensor(batch, "int32"), cache, 0, left_padding=padding)
        return logits[:, -1], (cache, padding)

    def step(self, token_ids, state, index):
        extra = {} if len(state) == 1 else {"left_padding": state[1]}
        logits, _, cache = self.model.call_with_cache(
            token_ids[:, None], state[0], index, **extra)
        return logits[:, -1], (cache,) + tuple(state[1:])

    def reorder(self, state, indices):
        from keras import ops

        return tuple(ops.take(part, indices, axis=0) for part in state)


class StateDecoder(CacheDecoder):
    """A recurrent state (`call_with_state`): one position per step."""

    prefill_in_xla = False

    def check_length(self, longest_prompt, max_new_tokens):
        pass

    def prefill(self, batch, left_padding, total_length):
        from keras import ops

        logits, states = self.model.call_with_state(ops.convert_to_tensor(batch, "int32"))
        return logits[:, -1], states

    def step(self, token_ids, state, index):
        logits, states = self.model.call_with_state(token_ids[:, None], state)
        return logits[:, -1], states

    def reorder(self, state, indices):
        from keras import ops

        return [[ops.take(part, indices, axis=0) for part in layer] for layer in state]


class Seq2SeqDecoder(CacheDecoder):
    """An encoder-decoder model decoding the targets of `source_ids`.

    `source_ids` is an int array `(batch, source_length)`, right-padded with
    0, one row per decoder row. The state is `(cache, encoder_padding_mask,
    cross_cache)`, all batch-first, so beam search reorders it like a cache.
    """

    prefill_in_xla = False  # its sources are not an argument of `prefill`

    def __init__(self, model, source_ids):
        self.model = model
        self.source_ids = np.asarray(source_ids, "int32")

    def check_length(self, longest_prompt, max_new_tokens):
        limit = self.model.max_sequence_length
        longest = max(self.source_ids.shape[1], longest_prompt + max_new_tokens)
        if self.model.position_encoding == "learned" and longest > limit:
            raise ValueError(
                f"A source of {self.source_ids.shape[1]} tokens or {longest_prompt} "
                f"start token(s) + max_new_tokens={max_new_tokens} exceeds the "
                f"model's max_sequence_length ({limit}).")

    def prefill(self, batch, left_padding, total_length):
        from keras import ops

        if left_padding is not None:
            raise ValueError("Target prefixes of an encoder-decoder batch must have one "
                             f"length. Received left padding {list(left_padding)}.")
        encoder_outputs, padding_mask = self.model.encode(
            ops.convert_to_tensor(self.source_ids))
        cross_cache = self.model.cross_attention_cache(encoder_outputs)
        cache = self.model.empty_cache(len(batch), total_length)
        logits, _, cache = self.model.call_with_cache(
            ops.convert_to_tensor(batch, "int32"), padding_mask, cache, cross_cache, 0)
        return logits[:, -1], (cache, padding_mask, cross_cache)

    def step(self, token_ids, state, index):
        cache, padding_mask, cross_cache = state
        logits, _, cache = self.model.call_with_cache(
            token_ids[:, None], padding_mask, cache, cross_cache, index)
        return logits[:, -1], (cache, padding_mask, cross_cache)


class RerunDecoder:
    """Any causal LM: the whole sequence at every step (no cache, no state).

    Rows are right-padded for the call, so the positions of every real
    token are those of the row alone; the state is `(ids, left_padding)`,
    NumPy arrays.
    """

    compiled = False

    def __init__(self, model):
        self.model = model

    def check_length(self, longest_prompt, max_new_tokens):
        pass

    def prefill(self, batch, left_padding, total_length):
        padding = np.zeros(len(batch), "int64") if left_padding is None else np.asarray(left_padding)
        ids = np.zeros((len(batch), total_length), "int32")
        ids[:, :batch.shape[1]] = batch
        return self._last_logits(ids, padding, batch.shape[1]), (ids, padding)

    def step(self, token_ids, state, index):
        ids, padding = state
        ids = ids.copy()
        ids[:, index] = np.asarray(token_ids)
        return self._last_logits(ids, padding, index + 1), (ids, padding)

    def reorder(self, state, indices):
        ids, padding = state
        return ids[np.asarray(indices)], padding[np.asarray(indices)]

    def _last_logits(self, ids, padding, end):
        lengths = end - padding
        right = np.zeros((len(ids), int(lengths.max())), "int32")
        for row, (start, length) in enumerate(zip(padding, lengths)):
            right[row, :length] = ids[row, start:end]
        logits = np.asarray(self.model(right, training=False), "float32")
        return logits[np.arange(len(ids)), lengths - 1]
