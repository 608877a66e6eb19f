"""keraslm-tflite: the `tflite`, `tflite-generation` and `litertlm` exporters
(TFLite / LiteRT, LiteRT-LM), as a keraslm plugin.

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

It also registers the generation exporters for `transformer_lm` runs
(`keraslm_tflite.generation_exporter`): `tflite-generation`, a TFLite file
with `prefill_{N}` and `decode` signatures over an explicit key/value cache
(run it with `keraslm_tflite.generation.TFLiteGenerator`), and `litertlm`,
that file in a `.litertlm` bundle with the run's tokenizer and metadata for
`litert_lm.Engine`:

```bash
keraslm export runs/lm --format litertlm --quantize dynamic_int8
keraslm export runs/lm --format tflite-generation   # export/model.generation.tflite
```
"""

import keraslm
from keraslm_tflite.convert import QUANTIZE  # plain tuples: no TensorFlow import
from keraslm_tflite.generation import QUANTIZE as GENERATION_QUANTIZE

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
    register(
        "tflite-generation",
        "keraslm_tflite.generation_exporter:export_tflite_generation",
        description="TFLite prefill_N/decode signatures with an explicit KV cache "
                    "(transformer_lm), checked in ai_edge_litert against keraslm "
                    "generate.",
        # Not ".tflite": the default output (RUN/export/model + extension)
        # must not be the forward-pass file's.
        file_extension=".generation.tflite",
        runtime="keraslm_tflite.generation:load",
        choices={"quantize": GENERATION_QUANTIZE},
        tasks=("lm",),
        part_of="litertlm",  # the bundle's TFLite file
    )
    register(
        "litertlm",
        "keraslm_tflite.generation_exporter:export_litertlm",
        description="LiteRT-LM .litertlm bundle (TFLite prefill/decode + tokenizer + "
                    "metadata) for litert_lm.Engine (transformer_lm), checked there.",
        file_extension=".litertlm",
        runtime="keraslm_tflite.litertlm:load",
        choices={"quantize": GENERATION_QUANTIZE},
        tasks=("lm",),
    )
