"""Decoding for encoder-decoder models (`translate`).

The encoder runs once on the batch of sources, and its keys and values for
every decoder layer are computed once (`cross_attention_cache`), in the
prefill of `keraslm.generation.decoders.Seq2SeqDecoder`; the decoder then
adds one token per step through `call_with_cache`, so each step costs one
position. Decoding goes through the same loops as `generate_ids`: greedy
by default, the samplers (`top_k`, `top_p`, `random`, seeded), beam search
(`num_beams`, `length_penalty`, `early_stopping`), the repetition penalty
and no-repeat n-grams. A row stops at `[SEP]` (end of text) or at a stop
string; decoding stops when every row has.

Example:

```python
config, task, model, tokenizer = keraslm.training.load_run("runs/mt")
keraslm.generation.translate(model, tokenizer, ["In the beginning God created"])
keraslm.generation.translate(model, tokenizer, sources, num_beams=4,
                             no_repeat_ngram_size=3)
```
"""

import numpy as np


def translate_ids(model, source_ids, max_new_tokens=64, *, start_id, stop_id,
                  banned_ids=(0,), stop_condition=None, **options):
    """Target ids for a batch of source id lists.

    Args:
        model: a `keraslm.models.Seq2SeqTransformer`.
        source_ids: list of lists of int, each ending as the model was
            trained (`source [SEP]`); padded here with 0.
        max_new_tokens: int. At most this many target ids per row.
        start_id: int. The decoder's first input (`[CLS]`).
        stop_id: int. Ends a row (not returned).
        banned_ids: ids never produced. Defaults to `(0,)` (padding).
        stop_condition: callable or None, as in `generate_ids`.
        **options: the decoding options of `keraslm.generation.generate_ids`
            (`sampler`, `temperature`, `top_k`, `top_p`, `seed`,
            `num_beams`, `length_penalty`, `early_stopping`,
            `repetition_penalty`, `no_repeat_ngram_size`, `stop_ids`).
            Defaults to greedy decoding.

    Returns:
        list of lists of int: the target ids of each row.

    Example:

    ```python
    translate_ids(model, [[12, 40, 3]], 20, start_id=2, stop_id=3, num_beams=4)
    ```
    """
    from keraslm.generation.api import _decode, check_options
    from keraslm.generation.decoders import Seq2SeqDecoder

    if (not isinstance(source_ids, (list, tuple)) or not source_ids
            or any(len(ids) == 0 for ids in source_ids)):
        lengths = ([len(ids) for ids in source_ids]
                   if isinstance(source_ids, (list, tuple)) else source_ids)
        raise ValueError("Every source needs at least one token. Received: "
                         f"{lengths!r} tokens per source.")
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) \
            or max_new_tokens < 1:
        raise ValueError(f"`max_new_tokens` must be an integer >= 1. Received: "
                         f"max_new_tokens={max_new_tokens!r}")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown decoding option(s) {unknown}. Expected some of "
                         f"{sorted(_OPTIONS)}.")
    settings = {**_OPTIONS, **options}
    settings["stop_ids"] = tuple(sorted({int(stop_id), *map(int, settings["stop_ids"])}))
    check_options(max_new_tokens=max_new_tokens, **{
        name: (list(value) if name == "stop_ids" else value)
        for name, value in settings.items()})
    longest = max(len(ids) for ids in source_ids)
    batch = np.zeros((len(source_ids), longest), "int32")
    for row, ids in enumerate(source_ids):
        batch[row, :len(ids)] = ids
    settings.update(banned_ids=tuple(sorted(set(int(i) for i in banned_ids))),
                    stop_condition=stop_condition)
    return _decode(model, [[start_id] for _ in source_ids], max_new_tokens, settings,
                   decoder=Seq2SeqDecoder(model, batch))


#: `translate_ids`' decoding options and their defaults (greedy).
_OPTIONS = dict(sampler="greedy", temperature=1.0, top_k=40, top_p=0.9, seed=0,
                stop_ids=(), repetition_penalty=1.0, no_repeat_ngram_size=0,
                num_beams=None, length_penalty=1.0, early_stopping=True)


def translate(model, tokenizer, sources, max_new_tokens=64, *, batch_size=32,
              max_source_length=None, stop=(), **options):
    """Translates a list of source texts and returns the targets.

    Sources are encoded as in training (`source [SEP]`, truncated to
    `max_source_length` tokens, by default the model's positions) and
    decoded in batches of `batch_size`, greedy unless `options` say
    otherwise (those of `translate_ids`). `stop` (a string or a list of
    them) ends a row once its translation contains one, cut before it.

    Example:

    ```python
    keraslm.generation.translate(model, tokenizer, ["And God said"], 40)
    keraslm.generation.translate(model, tokenizer, sources, 40, num_beams=4,
                                 length_penalty=0.6, no_repeat_ngram_size=3)
    ```
    """
    from keraslm.generation.api import stop_cutter

    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, (list, tuple)) or not all(
            isinstance(text, str) for text in sources):
        raise ValueError(f"`sources` must be a string or a list of strings. "
                         f"Received: sources={sources!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1. "
                         f"Received: batch_size={batch_size!r}")
    cut = stop_cutter(stop)

    condition = ((lambda ids: any(s in tokenizer.decode(ids) for s in cut.stops))
                 if cut.stops else None)
    limit = max_source_length or model.max_sequence_length
    encoded = [tokenizer.encode(text)[:limit - 1] + [tokenizer.eos_id] for text in sources]
    targets = []
    for start in range(0, len(encoded), batch_size):
        ids = translate_ids(model, encoded[start:start + batch_size], max_new_tokens,
                            start_id=tokenizer.bos_id, stop_id=tokenizer.eos_id,
                            banned_ids=(tokenizer.pad_id, tokenizer.unk_id,
                                        tokenizer.mask_id, tokenizer.bos_id),
                            stop_condition=condition, **options)
        targets.extend(cut(tokenizer.decode(row)) for row in ids)
    return targets
