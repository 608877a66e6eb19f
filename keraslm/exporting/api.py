"""`export()`: look up the exporter, run it, write its report beside the artifact."""

import json
import os

from keraslm.exporting.parity import ExportError, ExportResult, sample_inputs


def export(model, path, format="saved_model", *, inputs=None, atol=1e-4,
           **options) -> ExportResult:
    """Exports `model` with the exporter registered as `format` and checks it.

    Args:
        model: a built Keras model.
        path: str. Where to write the artifact.
        format: str. An exporter name from `keraslm.registry.exporters`
            (`"saved_model"` built in; `"onnx"` from the keraslm-onnx plugin).
        inputs: list of input batches for the parity check, of at least two
            shapes where the model accepts dynamic shapes. Defaults to
            `sample_inputs(model)`.
        atol: float. Largest allowed absolute difference. Defaults to `1e-4`.
        **options: exporter-specific options (e.g. `opset=` for onnx).

    Returns:
        `ExportResult`; also written to `<path>.report.json`.

    Raises:
        UnknownComponentError: no exporter is registered as `format`.
        ExportParityError: the artifact disagrees with the Keras model.

    Example:

    ```python
    result = keraslm.exporting.export(model, "out/model.onnx", format="onnx",
                                      atol=1e-5, opset=17)
    result.max_abs_diff  # also in out/model.onnx.report.json
    ```
    """
    from keraslm import registry

    exporter = registry.exporters.get(format)
    if inputs is None:
        inputs = sample_inputs(model)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    result = exporter.build(model=model, path=str(path), inputs=list(inputs),
                            atol=atol, **options)
    if not isinstance(result, ExportResult):
        raise ExportError(
            f"Exporter '{format}' from plugin '{exporter.plugin}' returned "
            f"{type(result).__name__}; exporters must return "
            "keraslm.exporting.ExportResult."
        )
    with open(str(path).rstrip("/") + ".report.json", "w") as handle:
        json.dump(result.to_dict(), handle, indent=2)
    return result
