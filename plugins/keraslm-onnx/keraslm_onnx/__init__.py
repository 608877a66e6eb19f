"""keraslm-onnx: the `onnx`, `onnx-decoder` and `onnx-genai` exporters, as a keraslm plugin.

Installing this distribution adds three formats to `keraslm.export` and
`keraslm export`:

- `onnx`: the forward pass, dynamic batch and length, checked in onnxruntime.
- `onnx-decoder`: a `transformer_lm`'s decoder with past/present key/value
  caches (`keraslm_onnx.decoder`), driven by `keraslm_onnx.generation.greedy`.
- `onnx-genai`: a folder onnxruntime-genai loads and generates from
  (`keraslm_onnx.bundle`), optionally dynamic int8.

Each writes a README.txt beside (or inside) the artifact. The module is
light: tf2onnx, onnxruntime and onnxruntime-genai are imported only when an
export runs.

Example:

```python
import keraslm

result = keraslm.export(model, "out/model.onnx", format="onnx")
result.max_abs_diff   # checked in onnxruntime
keraslm.export(lm, "out/lm.genai", format="onnx-genai", tokenizer=tokenizer)
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
    register(
        "onnx-decoder",
        "keraslm_onnx.decoder:export_onnx_decoder",
        description="A transformer_lm decoder with past/present caches (ONNX), "
                    "checked against call_with_cache in onnxruntime.",
        file_extension=".decoder.onnx",  # beside the forward pass's model.onnx
        tasks=("lm",),
        part_of="onnx-genai",  # the bundle's decoder.onnx
    )
    register(
        "onnx-genai",
        "keraslm_onnx.bundle:export_onnx_genai",
        description="An onnxruntime-genai folder (decoder, genai_config.json, "
                    "tokenizer), float32 or dynamic int8, generated from in the runtime.",
        file_extension=".genai",
        runtime="keraslm_onnx.bundle:load_runtime",
        choices={"quantize": ("none", "dynamic_int8")},
        tasks=("lm",),
    )
