"""keraslm-onnx: the `onnx` exporter, as an external keraslm plugin.

Installing this distribution adds `format="onnx"` to `keraslm.export` and
`keraslm export`. The module is light: tf2onnx and onnxruntime are imported
only when an export runs.

Example:

```python
import keraslm

result = keraslm.export(model, "out/model.onnx", format="onnx")
result.max_abs_diff   # checked in onnxruntime
```
"""

import keraslm

__version__ = "0.1.0"


@keraslm.hookimpl
def register_exporters(register):
    register(
        "onnx",
        "keraslm_onnx.exporter:export_onnx",
        description="ONNX via tf2onnx (dynamic batch and length), checked in "
                    "onnxruntime.",
        file_extension=".onnx",
    )
