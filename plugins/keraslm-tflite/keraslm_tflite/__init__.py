"""keraslm-tflite: the `tflite` exporter (TFLite / LiteRT), as a keraslm plugin.

Installing this distribution adds `format="tflite"` to `keraslm.export` and
`keraslm export`. The file holds builtin TFLite ops only unless
`allow_select_ops=True`; it can be quantized (`float16`, `dynamic_int8`,
`int8`) and is always run in LiteRT (`ai_edge_litert`) before it is kept.
The module is light: TensorFlow and LiteRT are imported only when an export
runs.

Example:

```python
import keraslm

result = keraslm.export(model, "out/model.tflite", format="tflite",
                        quantize="dynamic_int8")
result.details["size_ratio"]        # quantized size / float32 size
result.details["argmax_agreement"]  # top-1 agreement with Keras
```

```bash
keraslm export runs/reviews --format tflite --quantize dynamic_int8
```
"""

import keraslm
from keraslm_tflite.convert import QUANTIZE  # a plain tuple: no TensorFlow import

__version__ = "0.1.0"


@keraslm.hookimpl
def register_exporters(register):
    register(
        "tflite",
        "keraslm_tflite.exporter:export_tflite",
        description="TFLite/LiteRT, builtin ops only, optional float16/int8 "
                    "quantization, checked in ai_edge_litert.",
        file_extension=".tflite",
        runtime="keraslm_tflite.runtime:load",
        choices={"quantize": QUANTIZE},
    )
