"""Greedy generation over an exported ONNX decoder in onnxruntime.

The reference loop for the decoder `keraslm_onnx.decoder` writes (the
`decoder.onnx` of an `onnx-genai` bundle): it left-pads a batch of prompts,
prefills them in one call, then feeds one id per row per call, growing the
past/present caches, and picks the arg-max over the ids that are not banned,
as `keraslm.generation.generate_ids(model, prompts, n, sampler="greedy")`
does, and gives the same ids.

Example:

```python
from keraslm_onnx.generation import greedy

new_ids = greedy("bundle/decoder.onnx", [[2, 40, 11], [2, 7]], max_new_tokens=48,
                 stop_ids=[3])
```
"""

import numpy as np


def session(path, threads=None, spinning=False):
    """An onnxruntime CPU `InferenceSession` for `path`.

    Args:
        path: str. The `.onnx` file.
        threads: int or None. Intra-op threads; None lets onnxruntime decide.
        spinning: bool. Whether idle intra-op threads spin between the many
            small calls of a decode loop. Defaults to `False`: measured on 2
            shared cores, spinning threads made a 4-layer decoder's steps
            2-6x slower (benchmarks/export_latency.py).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if spinning else "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options,
                                        providers=["CPUExecutionProvider"])


class OnnxDecoder:
    """Runs a past/present decoder: `prefill(prompts)` then `step(ids, state)`.

    The state is a dict of the decoder inputs for the next call (the
    attention mask over everything so far, the next positions and the
    present caches). Logits come back as `[batch, length, vocab]`.

    Example:

    ```python
    runner = OnnxDecoder(session("decoder.onnx"))
    logits, state = runner.prefill([[5, 17, 9], [4]])
    logits, state = runner.step(np.array([3, 8]), state)
    ```
    """

    def __init__(self, session):
        if isinstance(session, (str, bytes)) or hasattr(session, "__fspath__"):
            session = globals()["session"](session)
        self.session = session
        self.past_names = [i.name for i in session.get_inputs()
                           if i.name.startswith("past_key_values.")]
        self.output_names = [o.name for o in session.get_outputs()]
        shape = next(i.shape for i in session.get_inputs()
                     if i.name == "past_key_values.0.key")
        self.num_heads, self.head_dim = int(shape[1]), int(shape[3])

    def _run(self, feed):
        # Caches stay onnxruntime OrtValues from one call to the next (no
        # copy to NumPy and back); only the logits are read.
        from onnxruntime import OrtValue

        values = {name: value if isinstance(value, OrtValue)
                  else OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value))
                  for name, value in feed.items()}
        outputs = dict(zip(self.output_names,
                           self.session.run_with_ort_values(self.output_names, values)))
        state = {"attention_mask": feed["attention_mask"],
                 "next_position": feed["position_ids"][:, -1] + 1}
        for name in self.past_names:
            state[name] = outputs[name.replace("past_key_values.", "present.")]
        return outputs["logits"].numpy(), state

    def prefill(self, prompts):
        """Runs the left-padded `prompts` (lists of ids) from an empty cache."""
        rows, longest = len(prompts), max(len(p) for p in prompts)
        input_ids = np.zeros((rows, longest), "int64")
        mask = np.zeros((rows, longest), "int64")
        for row, ids in enumerate(prompts):
            input_ids[row, longest - len(ids):] = ids
            mask[row, longest - len(ids):] = 1
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        empty = np.zeros((rows, self.num_heads, 0, self.head_dim), "float32")
        feed = {"input_ids": input_ids, "attention_mask": mask, "position_ids": positions}
        feed.update({name: empty for name in self.past_names})
        return self._run(feed)

    def step(self, token_ids, state):
        """Runs one id per row `(batch,)` after the tokens in `state`."""
        rows = len(token_ids)
        feed = {"input_ids": np.asarray(token_ids, "int64").reshape(rows, 1),
                "attention_mask": np.concatenate(
                    [state["attention_mask"], np.ones((rows, 1), "int64")], axis=1),
                "position_ids": state["next_position"].reshape(rows, 1).astype("int64")}
        feed.update({name: state[name] for name in self.past_names})
        return self._run(feed)


def greedy(decoder, prompt_ids, max_new_tokens, *, stop_ids=(), banned_ids=(0,)):
    """Greedy new ids for each prompt, decoded by an ONNX past/present decoder.

    Equals `keraslm.generation.generate_ids(model, prompt_ids, max_new_tokens,
    sampler="greedy", stop_ids=..., banned_ids=...)` for the model the
    decoder was exported from: a row stops after a stop id (not returned);
    banned ids are never picked.

    Args:
        decoder: a path to a `.onnx` decoder, an onnxruntime
            `InferenceSession` of one, or an `OnnxDecoder`.
        prompt_ids: list of int (one prompt) or a list of such lists.
        max_new_tokens: int. At most this many new ids per prompt.
        stop_ids: ids that end a row. Defaults to `()`.
        banned_ids: ids never picked. Defaults to `(0,)` (padding).

    Returns:
        list of int, or a list of such lists for a batch.

    Example:

    ```python
    greedy("bundle/decoder.onnx", [[2, 40, 11], [2, 7]], 48, stop_ids=[3])
    ```
    """
    runner = decoder if isinstance(decoder, OnnxDecoder) else OnnxDecoder(decoder)
    single = bool(prompt_ids) and all(isinstance(i, (int, np.integer)) for i in prompt_ids)
    prompts = [list(prompt_ids)] if single else [list(p) for p in prompt_ids]
    if not prompts or not all(prompts):
        raise ValueError(f"`prompt_ids` must be a list of ids or a list of non-empty "
                         f"lists of ids. Received: {prompt_ids!r}")
    new = [[] for _ in prompts]
    if max_new_tokens > 0:
        logits, state = runner.prefill(prompts)
        done = np.zeros(len(prompts), bool)
        stops, banned = set(int(i) for i in stop_ids), list(banned_ids)
        for index in range(max_new_tokens):
            last = logits[:, -1].astype("float32")
            last[:, banned] = -np.inf
            tokens = last.argmax(axis=-1)
            for row in np.flatnonzero(~done):
                if int(tokens[row]) in stops:
                    done[row] = True
                else:
                    new[row].append(int(tokens[row]))
            if done.all() or index == max_new_tokens - 1:
                break
            logits, state = runner.step(tokens, state)
    return new[0] if single else new
