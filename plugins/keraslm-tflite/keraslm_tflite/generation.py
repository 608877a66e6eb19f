"""A Transformer LM's generation loop as TFLite: `prefill_{N}` and `decode`
signatures over an explicit key/value cache, and the Python loop that runs it.

The file (what LiteRT-LM's `PREFILL_DECODE` model takes, measured on
litert-lm-api 0.18.1; see ../shared/DESIGN.md "Export"):

- signatures `prefill_{N}` for several lengths `N` (`prefill_lengths`) and
  `decode` (`N = 1`);
- inputs `tokens` int32 `[1, N]`, `input_pos` int32 `[N]` (the cache slot of
  each token, consecutive), `mask` float32 `[1, 1, N, S]` (additive: `0`
  where a token may attend to a slot, a large negative number or `-inf`
  where not; a slot counts as visible when its value is above `-1`), and
  per layer `i` `kv_cache_k_{i}` / `kv_cache_v_{i}` float32 `[1, S, H, D]`
  (`S` the cache length, `H` heads, `D` head size);
- outputs `logits` float32 `[1, N, V]` and the updated caches under the
  input names. The new keys/values are written at `input_pos[0]` with a
  dynamic update slice (the builtin `DYNAMIC_UPDATE_SLICE`); queries also
  keep the model's own causal rule (slot `<=` own position), so a padded
  prefill (fewer real tokens than `N`) leaves the real tokens' logits as
  they are, and later calls overwrite the padded slots.

Every op is a TFLite builtin and the weights are frozen into the file (the
module handed to the converter tracks each Keras variable's `tf.Variable`,
`v.value`). The graph calls the model's own layers (`embed`, each
`TransformerDecoderBlock` with its cache, the final norm and the tied
output embedding), so it computes what `TransformerLM.call_with_cache`
computes.

`TFLiteGenerator(path)` is the reference loop: chunked prefill (the
smallest prefill signature that holds what is left of the prompt, else the
largest, chunk after chunk), then one `decode` call per new token, greedy,
with banned ids (keraslm bans padding, unknown and mask) and stop ids; it
keeps the cache between calls, so a second `generate_ids` continues the
same conversation (`reset()` starts a new one). It reproduces
`keraslm.generation.generate_ids(model, prompt, n)` (greedy) id for id.

Example:

```python
from keraslm_tflite.generation import TFLiteGenerator, convert_generation

content = convert_generation(model, cache_length=256, prefill_lengths=(16, 64))
open("lm.tflite", "wb").write(content)
generator = TFLiteGenerator("lm.tflite")
new_ids = generator.generate_ids(tokenizer.encode("ROMEO:"), 48,
                                 banned_ids=(0, 1, 4))
# == keraslm.generation.generate_ids(model, tokenizer.encode("ROMEO:"), 48)
```
"""

import numpy as np

#: Quantization modes of generation files (full `int8` is not offered: its
#: calibration would need representative caches and masks).
QUANTIZE = ("none", "float16", "dynamic_int8")

#: Prefill lengths tried by default, kept where they fit the cache (at most
#: half of it, so that a turn near the end of the cache still has a shorter
#: one; LiteRT-LM refuses a prefill longer than the free cache slots).
DEFAULT_PREFILL_LENGTHS = (8, 32, 128, 512)

#: Slots whose mask value is above this are visible (the mask is additive:
#: 0 = attend, a large negative number or -inf = not).
VISIBLE_ABOVE = -1.0


def default_prefill_lengths(cache_length):
    """The `DEFAULT_PREFILL_LENGTHS` that are at most half the cache (at
    least the smallest one).

    Example:

    ```python
    default_prefill_lengths(256)   # (8, 32, 128)
    ```
    """
    lengths = tuple(n for n in DEFAULT_PREFILL_LENGTHS if n <= cache_length // 2)
    return lengths or (min(DEFAULT_PREFILL_LENGTHS[0], cache_length),)


def check_generation_model(model):
    """Raises a ValueError unless `model` is a Transformer causal LM with a
    key/value cache (`call_with_cache`, `transformer_layers`): what the
    generation file is built from."""
    needed = ("call_with_cache", "empty_cache", "transformer_layers", "token_embedding")
    if not all(hasattr(model, name) for name in needed):
        raise ValueError(
            f"Generation export (prefill/decode signatures with a key/value cache) "
            f"takes a Transformer causal LM (a transformer_lm run, task lm). "
            f"Received: {type(model).__name__} ({model.name}).")


def cache_shape(model, cache_length):
    """`[1, S, H, D]`: one layer's key (or value) cache."""
    return [1, int(cache_length), int(model.num_heads),
            int(model.hidden_dim // model.num_heads)]


def cache_names(model):
    """`kv_cache_k_0, kv_cache_v_0, kv_cache_k_1, ...`"""
    return [f"kv_cache_{kind}_{index}" for index in range(model.num_layers)
            for kind in "kv"]


def _step(model, tokens, input_pos, mask, caches):
    """Logits and updated caches of `tokens` at `input_pos` (the graph of
    every signature)."""
    from keras import ops

    from keraslm.models.base import embed

    start = input_pos[0]
    x = embed(model.token_embedding, model.position_embedding, tokens, start_index=start)
    visible = mask[:, 0] > VISIBLE_ABOVE  # (1, N, S)
    outputs = {}
    for index, block in enumerate(model.transformer_layers):
        cache = ops.stack([caches[f"kv_cache_k_{index}"], caches[f"kv_cache_v_{index}"]],
                          axis=1)
        x, cache = block(x, decoder_attention_mask=visible, self_attention_cache=cache,
                         self_attention_cache_update_index=start, training=False)
        outputs[f"kv_cache_k_{index}"] = cache[:, 0]
        outputs[f"kv_cache_v_{index}"] = cache[:, 1]
    if model.final_layer_norm is not None:
        x = model.final_layer_norm(x)
    outputs["logits"] = ops.cast(model.token_embedding(x, reverse=True), "float32")
    return outputs


def generation_functions(model, cache_length, prefill_lengths):
    """Concrete functions `prefill_{N}` (one per length) and `decode`, named
    as the signatures they become."""
    import tensorflow as tf

    def traced(length, name):
        def function(tokens, input_pos, mask, **caches):
            return _step(model, tokens, input_pos, mask, caches)

        function.__name__ = name  # from_concrete_functions names signatures so
        specs = {
            "tokens": tf.TensorSpec([1, length], tf.int32, name="tokens"),
            "input_pos": tf.TensorSpec([length], tf.int32, name="input_pos"),
            "mask": tf.TensorSpec([1, 1, length, cache_length], tf.float32, name="mask"),
        }
        for cache_name in cache_names(model):
            specs[cache_name] = tf.TensorSpec(cache_shape(model, cache_length),
                                              tf.float32, name=cache_name)
        return tf.function(function).get_concrete_function(**specs)

    return ([traced(n, f"prefill_{n}") for n in sorted(prefill_lengths)]
            + [traced(1, "decode")])


def check_lengths(model, cache_length, prefill_lengths):
    """`(cache_length, prefill_lengths)` checked and defaulted: the cache
    defaults to the model's `max_sequence_length` (and cannot exceed it with
    learned positions); prefill lengths default to
    `default_prefill_lengths(cache_length)` and must be in `[1,
    cache_length]`."""
    import numbers

    limit = int(model.max_sequence_length)
    if cache_length is None:
        cache_length = limit
    if (isinstance(cache_length, bool) or not isinstance(cache_length, numbers.Integral)
            or cache_length < 2):
        raise ValueError(f"`cache_length` must be an integer >= 2. "
                         f"Received: cache_length={cache_length!r}")
    if model.position_encoding == "learned" and cache_length > limit:
        raise ValueError(
            f"`cache_length` must be at most the model's max_sequence_length ({limit}) "
            f"with learned positions. Received: cache_length={cache_length}")
    if prefill_lengths is None:
        prefill_lengths = default_prefill_lengths(cache_length)
    prefill_lengths = tuple(prefill_lengths)
    if not prefill_lengths or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool)
            and 1 <= n <= cache_length for n in prefill_lengths):
        raise ValueError(
            f"`prefill_lengths` must be a non-empty list of integers in [1, "
            f"cache_length={cache_length}]. Received: prefill_lengths={prefill_lengths!r}")
    return int(cache_length), tuple(sorted(set(int(n) for n in prefill_lengths)))


def convert_generation(model, cache_length=None, prefill_lengths=None, quantize="none"):
    """The generation file of `model` as flatbuffer bytes (see the module
    docstring), builtin ops only.

    Args:
        model: a `keraslm.models.TransformerLM`.
        cache_length: int or None. Cache slots `S`; defaults to the model's
            `max_sequence_length`.
        prefill_lengths: list of int or None. Defaults to
            `default_prefill_lengths(cache_length)`.
        quantize: `"none"`, `"float16"` or `"dynamic_int8"`.

    Example:

    ```python
    content = convert_generation(model, quantize="dynamic_int8")
    ```
    """
    import tensorflow as tf

    check_generation_model(model)
    if quantize not in QUANTIZE:
        raise ValueError(f"`quantize` must be one of {', '.join(QUANTIZE)}. "
                         f"Received: quantize={quantize!r}")
    cache_length, prefill_lengths = check_lengths(model, cache_length, prefill_lengths)
    module = tf.Module()
    module.frozen = [v.value for v in model.variables]  # tf.Variables: folded
    functions = generation_functions(model, cache_length, prefill_lengths)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class TFLiteGenerator:
    """Runs a generation file in LiteRT (`ai_edge_litert`), as an app would.

    Args:
        path: str. A `.tflite` file from `convert_generation` (or the
            `tflite-generation` exporter).
        num_threads: int or None. Interpreter threads.

    Attributes:
        prefill_lengths: the `N` of its `prefill_{N}` signatures.
        cache_length: `S`.
        position: slots used so far in this conversation.

    Example:

    ```python
    generator = TFLiteGenerator("model.tflite")
    first = generator.generate_ids([15, 8, 22], 48, banned_ids=(0, 1, 4))
    second = generator.generate_ids([9, 5], 20, banned_ids=(0, 1, 4))  # same cache
    generator.reset()                                # a new conversation
    logits = generator(np.array([[15, 8, 22, 9]]))  # (1, 4, vocabulary)
    ```
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        from keraslm_tflite.runtime import _allocate

        self.path = str(path)
        self._interpreter = Interpreter(model_path=self.path, num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        self.prefill_lengths = sorted(int(name[len("prefill_"):]) for name in signatures
                                      if name.startswith("prefill_"))
        if "decode" not in signatures or not self.prefill_lengths:
            raise ValueError(
                f"{self.path} is not a generation file: it needs prefill_N and decode "
                f"signatures. Received signatures: {sorted(signatures)}")
        _allocate(self._interpreter)  # before the runners hold its tensors
        self._runners = {name: self._interpreter.get_signature_runner(name)
                         for name in signatures}
        details = self._runners["decode"].get_input_details()
        self.cache_names = sorted(name for name in details if name.startswith("kv_cache_"))
        self._cache_shapes = {name: details[name]["shape"] for name in self.cache_names}
        self.cache_length = int(details["mask"]["shape"][-1])
        self.reset()

    def reset(self):
        """Empties the cache: the next call starts a new conversation."""
        self._cache = {name: np.zeros(shape, np.float32)
                       for name, shape in self._cache_shapes.items()}
        self.position = 0

    def _run(self, name, ids, length):
        count = len(ids)
        if self.position + length > self.cache_length:
            raise ValueError(
                f"{self.path}: {self.position} cache slots are used and {name} writes "
                f"{length} more; the cache holds {self.cache_length}. Call reset() to "
                f"start a new conversation.")
        tokens = np.zeros((1, length), np.int32)
        tokens[0, :count] = ids
        positions = np.arange(self.position, self.position + length, dtype=np.int32)
        slots = np.arange(self.cache_length)
        mask = np.where(slots[None, :] <= positions[:, None], 0.0, -np.inf)
        outputs = self._runners[name](tokens=tokens, input_pos=positions,
                                      mask=mask[None, None].astype(np.float32),
                                      **self._cache)
        for cache_name in self.cache_names:
            self._cache[cache_name] = outputs[cache_name]
        self.position += count
        return outputs["logits"][0, :count]

    def append(self, ids):
        """Runs `ids` through the prefill signatures (chunked) and returns
        the logits of every one of them `(len(ids), vocabulary)`."""
        ids = [int(i) for i in ids]
        parts = []
        while ids:
            fitting = [n for n in self.prefill_lengths if n >= len(ids)]
            fitting = [n for n in fitting if self.position + n <= self.cache_length]
            length = min(fitting) if fitting else max(
                [n for n in self.prefill_lengths if self.position + n <= self.cache_length]
                or [self.prefill_lengths[0]])
            chunk, ids = ids[:length], ids[length:]
            parts.append(self._run(f"prefill_{length}", chunk, length))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def step(self, token_id):
        """Runs one id through `decode`; returns its logits `(vocabulary,)`."""
        return self._run("decode", [int(token_id)], 1)[0]

    def generate_ids(self, prompt_ids, max_new_tokens, *, stop_ids=(), banned_ids=(0,)):
        """Greedy: appends `prompt_ids` to the conversation and returns up to
        `max_new_tokens` new ids (a stop id ends it and is not returned,
        as in `keraslm.generation.generate_ids`)."""
        if not len(prompt_ids):
            raise ValueError("`prompt_ids` is empty: generation needs at least one id.")
        logits = self.append(prompt_ids)[-1]
        banned = [int(i) for i in banned_ids]
        stops = {int(i) for i in stop_ids}
        new = []
        for _ in range(max_new_tokens):
            logits = np.array(logits, np.float32)
            logits[banned] = -np.inf
            token = int(np.argmax(logits))
            if token in stops:
                break
            new.append(token)
            # Every new id goes into the cache, the last one too: a next
            # turn continues after it.
            logits = self.step(token)
        return new

    def __call__(self, batch):
        """Teacher-forced logits `(rows, length, vocabulary)` of a batch of
        right-padded id rows, each from an empty cache: the first half of a
        row through the prefill signatures, the rest one `decode` call per
        id (so both kinds of signature are checked). Padding (0) after a
        row's ids does not change its logits (causal attention)."""
        batch = np.asarray(batch)
        rows = []
        for row in batch:
            self.reset()
            split = max(1, len(row) // 2)
            head = self.append(row[:split])
            tail = [self.step(token) for token in row[split:]]
            rows.append(np.concatenate([head, np.stack(tail)]) if tail else head)
        self.reset()
        return np.stack(rows)


def load(path, num_threads=None):
    """`TFLiteGenerator(path)`: the registered `runtime` of the
    `tflite-generation` exporter (called like the model: `run(batch)` gives
    logits)."""
    return TFLiteGenerator(path, num_threads=num_threads)
