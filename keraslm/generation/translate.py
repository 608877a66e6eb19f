"""Greedy decoding for encoder-decoder models (`translate`).

The encoder runs once on the batch of sources; its keys and values for every
decoder layer are computed once (`cross_attention_cache`); the decoder then
adds one token per step through `call_with_cache`, so each step costs one
position. A row stops at `[SEP]` (end of text); decoding stops when every row
has.

Example:

```python
config, task, model, tokenizer = keraslm.training.load_run("runs/mt")
keraslm.generation.translate(model, tokenizer, ["In the beginning God created"])
```
"""

import numpy as np


def translate_ids(model, source_ids, max_new_tokens=64, *, start_id, stop_id,
                  banned_ids=(0,)):
    """Greedy target ids for a batch of source id lists.

    Args:
        model: a `keraslm.models.Seq2SeqTransformer`.
        source_ids: list of lists of int, each ending as the model was
            trained (`source [SEP]`); padded here with 0.
        max_new_tokens: int. At most this many target ids per row.
        start_id: int. The decoder's first input (`[CLS]`).
        stop_id: int. Ends a row (not returned).
        banned_ids: ids never produced. Defaults to `(0,)` (padding).

    Returns:
        list of lists of int: the target ids of each row.
    """
    from keras import ops

    if not source_ids or any(len(ids) == 0 for ids in source_ids):
        raise ValueError("Every source needs at least one token. Received: "
                         f"{[len(ids) for ids in source_ids]} tokens per source.")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be an integer >= 1. Received: "
                         f"max_new_tokens={max_new_tokens!r}")
    limit = model.max_sequence_length
    longest = max(len(ids) for ids in source_ids)
    if model.position_encoding == "learned" and max(longest, max_new_tokens + 1) > limit:
        raise ValueError(
            f"A source of {longest} tokens or max_new_tokens={max_new_tokens} (+1 "
            f"start token) exceeds the model's max_sequence_length ({limit}).")
    batch = np.zeros((len(source_ids), longest), "int32")
    for row, ids in enumerate(source_ids):
        batch[row, :len(ids)] = ids
    encoder_outputs, padding_mask = model.encode(ops.convert_to_tensor(batch))
    cross_cache = model.cross_attention_cache(encoder_outputs)
    cache = model.empty_cache(len(source_ids), max_new_tokens + 1)
    tokens = np.full((len(source_ids), 1), start_id, "int32")
    outputs = [[] for _ in source_ids]
    finished = np.zeros(len(source_ids), bool)
    banned = list(banned_ids)
    for step in range(max_new_tokens):
        logits, _, cache = model.call_with_cache(
            ops.convert_to_tensor(tokens), padding_mask, cache, cross_cache, step)
        last = np.array(ops.convert_to_numpy(logits[:, -1]), "float32")
        last[:, banned] = -np.inf
        chosen = last.argmax(axis=-1)
        for row, token in enumerate(chosen):
            if finished[row]:
                continue
            if token == stop_id:
                finished[row] = True
            else:
                outputs[row].append(int(token))
        if finished.all():
            break
        tokens = chosen.astype("int32")[:, None]
    return outputs


def translate(model, tokenizer, sources, max_new_tokens=64, *, batch_size=32,
              max_source_length=None):
    """Translates a list of source texts (greedy) and returns the targets.

    Sources are encoded as in training (`source [SEP]`, truncated to
    `max_source_length` tokens, by default the model's positions) and
    decoded in batches of `batch_size`.

    Example:

    ```python
    keraslm.generation.translate(model, tokenizer, ["And God said"], 40)
    ```
    """
    if isinstance(sources, str):
        sources = [sources]
    limit = max_source_length or model.max_sequence_length
    encoded = [tokenizer.encode(text)[:limit - 1] + [tokenizer.eos_id] for text in sources]
    targets = []
    for start in range(0, len(encoded), batch_size):
        ids = translate_ids(model, encoded[start:start + batch_size], max_new_tokens,
                            start_id=tokenizer.bos_id, stop_id=tokenizer.eos_id,
                            banned_ids=(tokenizer.pad_id, tokenizer.unk_id,
                                        tokenizer.mask_id, tokenizer.bos_id))
        targets.extend(tokenizer.decode(row) for row in ids)
    return targets
