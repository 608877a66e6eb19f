"""Export a Keras model and check the exported file in its own runtime.

Every exporter (the built-in `saved_model`, `onnx` from the keraslm-onnx
plugin, `tflite` from the keraslm-tflite plugin) follows the same contract:
write the file, run it in its own runtime on inputs of several shapes,
compare with the Keras model through `check_parity`, and return an
`ExportResult`. An exporter may declare allowed values of its options in
its registration metadata (`choices={"quantize": (...)}`); `keraslm export`
checks them before it reads the model. `export()` also writes the
result as JSON beside the artifact (`<path>.report.json`).

Modules:

- `api`: `export()`, which looks up the exporter and writes the report.
- `parity`: what every exporter shares: `sample_inputs`, `check_parity`,
  `finish`, `ExportResult` and the errors.
- `saved_model`: the built-in `saved_model` exporter.

Example:

```python
import keraslm

result = keraslm.export(model, "out/model", format="saved_model")
print(result.summary())
```
"""

from keraslm.exporting.api import export
from keraslm.exporting.parity import (
    ExportError,
    ExportParityError,
    ExportResult,
    artifact_size,
    check_parity,
    finish,
    keras_reference,
    median_latency_ms,
    sample_inputs,
)

__all__ = [
    "ExportError", "ExportParityError", "ExportResult", "artifact_size",
    "check_parity", "export", "finish", "keras_reference", "median_latency_ms",
    "sample_inputs",
]
