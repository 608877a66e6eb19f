"""`export()`: look up the exporter, run it, write its report beside the artifact."""

import contextlib
import dataclasses
import json
import os
import shutil

from keraslm.exporting.parity import ExportError, ExportParityError, ExportResult, sample_inputs


def export(model, path, format="saved_model", *, inputs=None, atol=1e-4,
           **options) -> ExportResult:
    """Exports `model` with the exporter registered as `format` and checks it.

    Args:
        model: a built Keras model.
        path: str. Where to write the artifact.
        format: str. An exporter name from `keraslm.registry.exporters`
            (`"saved_model"` built in; `"onnx"` from the keraslm-onnx plugin,
            `"tflite"` from the keraslm-tflite plugin).
        inputs: list of input batches for the parity check, of at least two
            shapes where the model accepts dynamic shapes. Defaults to
            `sample_inputs(model)`.
        atol: float. Largest allowed absolute difference. Defaults to `1e-4`.
        **options: exporter-specific options (e.g. `opset=` for onnx,
            `quantize=` for tflite).

    Returns:
        `ExportResult`; also written to `<path>.report.json`.

    The exporter writes to a temporary name beside `path`, and the artifact
    is renamed to `path` only after its parity check passed: a kill or a
    failure never leaves half an artifact at `path`, nor replaces a good
    one. An artifact that fails its check is kept beside it as `.rejected`
    (`model.rejected.onnx`; the message says where) for inspection.

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
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0:
        raise ValueError(f"`atol` must be a number >= 0 (the largest allowed absolute "
                         f"difference). Received: atol={atol!r}")
    if inputs is None:
        inputs = sample_inputs(model)
    from keraslm.training.run_directory import _partial_name, atomic_write

    path = os.fspath(path).rstrip("/")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    extension = os.path.splitext(path)[1]
    partial = _partial_name(path, extension)
    _remove(partial)
    try:
        result = exporter.build(model=model, path=partial, inputs=list(inputs),
                                atol=atol, **options)
        if not isinstance(result, ExportResult):
            raise ExportError(
                f"Exporter '{format}' from plugin '{exporter.plugin}' returned "
                f"{type(result).__name__}; exporters must return "
                "keraslm.exporting.ExportResult."
            )
    except ExportParityError as error:
        if not os.path.exists(partial):
            raise
        rejected = path[:len(path) - len(extension)] + ".rejected" + extension
        _remove(rejected)
        os.replace(partial, rejected)
        raise ExportParityError(f"{error} The artifact that failed is kept at "
                                f"{rejected}; {path} was not written.") from error
    except BaseException:
        _remove(partial)
        raise
    _replace(partial, path)
    result = dataclasses.replace(result, path=path)
    atomic_write(path + ".report.json", json.dumps(result.to_dict(), indent=2))
    return result


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _replace(partial, path):
    """Renames `partial` to `path`; a directory artifact (SavedModel) that
    exists is moved aside first, then removed."""
    if os.path.isdir(path) and not os.path.islink(path):
        old = partial + ".old"
        os.replace(path, old)
        os.replace(partial, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, path)
