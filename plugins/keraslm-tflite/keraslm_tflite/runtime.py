"""Runs a `.tflite` file from keraslm on token-id batches, as an app would.

`load(path)` returns a `TFLiteRunner`: call it with a batch of ids of any
shape and it returns the file's output as numpy.

- A file with a dynamic signature (`[-1, -1]`, what Transformers export to)
  is resized to each batch's shape.
- A file with a static signature (`[1, L]`, what recurrent models export
  to) is run one row at a time: each row is right-padded with 0 (the padding
  id) to `L`, and per-token outputs are cut back to the row's length. A row
  longer than `L` is refused.
- Files run in LiteRT (`ai_edge_litert.interpreter`), the runtime apps
  embed. A file with Select-TF (Flex) ops is refused with a `ValueError`
  naming them: no Python runtime on this stack links the Flex delegate
  (measured: `tf.lite.Interpreter` fails with "Select TensorFlow op(s) ...
  not supported by this interpreter" too).

Example:

```python
from keraslm_tflite.runtime import load

run = load("runs/lm/export/model.tflite")
logits = run(np.array([[5, 9, 2]], "int32"))   # (1, 3, vocabulary)
run.runtime                                     # "ai_edge_litert 2.3.0"
```
"""

import numpy as np

_XNNPACK_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
_notice_dropped = False


def _allocate(interpreter):
    """`interpreter.allocate_tensors()`. The first call in a process prints
    LiteRT's `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` on
    stderr from C++ (no log level silences it); that line is dropped, and
    anything else written to stderr meanwhile is passed on."""
    global _notice_dropped
    if _notice_dropped:
        return interpreter.allocate_tensors()
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            return interpreter.allocate_tensors()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            _notice_dropped = True
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace")
                    .splitlines(keepends=True) if not line.startswith(_XNNPACK_NOTICE)]
            if kept:
                sys.stderr.write("".join(kept))


class TFLiteRunner:
    """A TFLite file as a function of token-id batches (see module docstring).

    Args:
        path: str. The `.tflite` file.
        num_threads: int or None. Interpreter threads.

    Example:

    ```python
    run = TFLiteRunner("model.tflite")
    run(np.ones((2, 7), "int32")).shape
    ```
    """

    def __init__(self, path, num_threads=None):
        from keraslm_tflite.convert import operators

        with open(path, "rb") as handle:
            content = handle.read()
        self.path = str(path)
        self.operators = operators(content)
        self.flex = [op for op in self.operators if op.startswith("Flex")]
        if self.flex:
            raise ValueError(
                f"{self.path} needs Select-TF ops ({', '.join(self.flex)}), which "
                f"only an app that links the Flex delegate can run; neither "
                f"ai_edge_litert nor tf.lite.Interpreter links it in Python.")
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_content=content, num_threads=num_threads)
        version = getattr(ai_edge_litert, "__version__", None)
        if version is None:
            import importlib.metadata

            version = importlib.metadata.version("ai-edge-litert")
        self.runtime = f"ai_edge_litert {version}"
        [self._input] = self._interpreter.get_input_details()
        self._outputs = self._interpreter.get_output_details()
        signature = self._input.get("shape_signature", self._input["shape"])
        self.input_shape = [int(d) if d >= 0 else None for d in signature]
        self.static = None not in self.input_shape
        self._allocated = None

    def _invoke(self, batch):
        if tuple(batch.shape) != self._allocated:
            if not self.static:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
            _allocate(self._interpreter)
            self._allocated = tuple(batch.shape)
        self._interpreter.set_tensor(self._input["index"], batch)
        self._interpreter.invoke()
        outputs = [self._interpreter.get_tensor(o["index"]) for o in self._outputs]
        return outputs[0] if len(outputs) == 1 else outputs

    def __call__(self, batch):
        batch = np.asarray(batch).astype(self._input["dtype"])
        if not self.static:
            return self._invoke(batch)
        rows, length = self.input_shape[0], self.input_shape[1]
        if batch.ndim != 2 or batch.shape[1] > length:
            raise ValueError(
                f"{self.path} takes token ids of static shape {self.input_shape}: rows "
                f"of at most {length} ids (right-padded with 0). Received a batch of "
                f"shape {list(batch.shape)}.")
        outputs = []
        for start in range(0, batch.shape[0], rows):
            part = batch[start:start + rows]
            padded = np.zeros((rows, length), batch.dtype)
            padded[:len(part), :part.shape[1]] = part
            output = self._invoke(padded)[:len(part)]
            if output.ndim >= 3 and output.shape[1] == length:
                output = output[:, :batch.shape[1]]  # per-token outputs
            outputs.append(output)
        return np.concatenate(outputs)


def load(path, num_threads=None):
    """`TFLiteRunner(path)`: the registered `runtime` of the `tflite` exporter.

    Example:

    ```python
    keraslm.registry.exporters.get("tflite").metadata["runtime"]
    # "keraslm_tflite.runtime:load"
    ```
    """
    return TFLiteRunner(path, num_threads=num_threads)
