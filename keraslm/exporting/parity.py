"""The parity check every exporter ends with, and the `ExportResult` report.

An exporter writes its file, then calls `finish`: it runs the Keras model
and the exported file on the same inputs (`check_parity`), times both
(`median_latency_ms`) and returns an `ExportResult`, which `export()` writes
as JSON beside the artifact.

Example:

```python
from keraslm.exporting import finish

def export_keras_file(model, path, *, inputs, atol):
    model.save(path)
    reloaded = keras.saving.load_model(path)
    return finish("keras_file", path, model,
                  lambda batch: np.asarray(reloaded(batch)), inputs, atol)
```
"""

import dataclasses
import os
import time

import numpy as np


class ExportError(RuntimeError):
    """The exported artifact could not be produced or run.

    Example:

    ```python
    raise keraslm.exporting.ExportError(
        "The onnx exporter handles models with one input. Received a model "
        "with 2 inputs.")
    ```
    """


class ExportParityError(ExportError):
    """The exported artifact runs but disagrees with the Keras model.

    Example:

    ```python
    try:
        keraslm.export(model, "out/model.onnx", format="onnx", atol=1e-6)
    except keraslm.exporting.ExportParityError as error:
        print(error)  # which output, by how much, for which input shape
    ```
    """


@dataclasses.dataclass
class ExportResult:
    """What an exporter wrote and how closely it matches the Keras model.

    Attributes:
        format: str. The exporter name.
        path: str. The artifact written.
        size_bytes: int. Its size on disk (a directory: the sum of its files).
        max_abs_diff: float or None. Largest absolute output difference over
            all checks; None when the file could not be run here
            (`details["parity"]` says why).
        tolerance: float or None. The `atol` the check used; None for a
            quantized file, which is checked by arg-max agreement instead
            (its float32 conversion is checked within `atol`).
        shapes_checked: list. Input shapes of each parity check.
        keras_latency_ms: float. Median Keras call time on the largest input.
        runtime_latency_ms: float. Median exported-runtime call time on it.
        details: dict. Exporter-specific facts (opset, ops used, endpoint).

    Example:

    ```python
    result = keraslm.export(model, "out/model", format="saved_model")
    print(result.summary())
    result.to_dict()["max_abs_diff"]
    ```
    """

    format: str
    path: str
    size_bytes: int
    max_abs_diff: float
    tolerance: float
    shapes_checked: list
    keras_latency_ms: float
    runtime_latency_ms: float
    details: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        if self.max_abs_diff is None:
            return (f"{self.format}: {self.path} ({self.size_bytes / 1e6:.2f} MB), "
                    f"not checked ({self.details.get('parity', 'no runtime')})")
        bound = ("unbounded: quantized" if self.tolerance is None
                 else f"tolerance {self.tolerance:g}")
        extra = ""
        if "size_ratio" in self.details:
            extra = (f", {self.details['size_ratio']:.2f}x the float32 size, arg-max "
                     f"agreement {self.details['argmax_agreement']:.1%}")
        return (
            f"{self.format}: {self.path} ({self.size_bytes / 1e6:.2f} MB), "
            f"max |diff| {self.max_abs_diff:.2e} ({bound}) "
            f"over shapes {self.shapes_checked}{extra}, latency "
            f"{self.runtime_latency_ms:.2f} ms vs Keras {self.keras_latency_ms:.2f} ms"
        )


def artifact_size(path) -> int:
    """Size in bytes of a file, or of every file under a directory.

    Example:

    ```python
    keraslm.exporting.artifact_size("out/saved_model")  # sums the directory
    ```
    """
    if os.path.isdir(path):
        return sum(
            os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(path) for name in names
        )
    return os.path.getsize(path)


def _vocabulary_size(model):
    for layer in model._flatten_layers(include_self=False):
        for attribute in ("vocabulary_size", "input_dim"):
            value = getattr(layer, attribute, None)
            if isinstance(value, int) and value > 1:
                return value
    return None


def sample_inputs(model, shapes=((1, 7), (3, 16)), seed=0):
    """Builds parity-check inputs of several shapes for `model`.

    Integer inputs (token ids) are drawn in `[1, vocabulary_size)`, so no
    position is padding; float inputs are standard normal. Dimensions the
    model fixes are kept; free dimensions take the values in `shapes`.

    Args:
        model: a built Keras model with a single input.
        shapes: tuples of `(batch, length)` for the free dimensions.
        seed: int. Defaults to `0`.

    Returns:
        A list of numpy arrays, one per shape.

    Example:

    ```python
    batches = keraslm.exporting.sample_inputs(model, shapes=((2, 40),))
    batches[0].shape  # (2, 40)
    ```
    """
    if len(model.inputs) != 1:
        raise ValueError(
            "`sample_inputs` handles models with exactly one input. Received "
            f"a model with {len(model.inputs)} inputs; pass `inputs=` to "
            "`keraslm.export` with one batch per check instead."
        )
    spec = model.inputs[0]
    rng = np.random.default_rng(seed)
    batches = []
    for free in shapes:
        free = list(free)
        shape = [dim if dim is not None else free.pop(0) if free else 1
                 for dim in spec.shape]
        dtype = str(spec.dtype)
        if "int" in dtype:
            high = min(_vocabulary_size(model) or 100, 10_000)
            batches.append(rng.integers(1, high, size=shape).astype(dtype))
        else:
            batches.append(rng.standard_normal(shape).astype(dtype))
    return batches


def _as_list(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[key]) for key in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def check_parity(reference, candidate, inputs, *, atol, format):
    """Runs `reference` and `candidate` on each input and compares outputs.

    Args:
        reference: callable. The Keras model (or any function) to trust.
        candidate: callable. Runs the exported artifact on the same input.
        inputs: list of input batches.
        atol: float. Largest allowed absolute difference.
        format: str. The exporter name, for messages.

    Returns:
        `(max_abs_diff, shapes_checked)`.

    Raises:
        ExportParityError: outputs differ in shape or beyond `atol`.

    Example:

    ```python
    max_diff, shapes = keraslm.exporting.check_parity(
        keraslm.exporting.keras_reference(model), run_exported,
        keraslm.exporting.sample_inputs(model), atol=1e-4, format="onnx")
    ```
    """
    worst = 0.0
    shapes = []
    for batch in inputs:
        expected = _as_list(reference(batch))
        actual = _as_list(candidate(batch))
        shape = list(np.shape(batch))
        shapes.append(shape)
        if len(expected) != len(actual):
            raise ExportParityError(
                f"{format} export returns {len(actual)} outputs for input shape "
                f"{shape}; the Keras model returns {len(expected)}."
            )
        for index, (want, got) in enumerate(zip(expected, actual)):
            if want.shape != got.shape:
                raise ExportParityError(
                    f"{format} export output {index} has shape {got.shape} for "
                    f"input shape {shape}; the Keras model gives {want.shape}."
                )
            if not np.all(np.isfinite(got)):
                raise ExportParityError(
                    f"{format} export output {index} contains NaN or Inf for "
                    f"input shape {shape}."
                )
            diff = float(np.max(np.abs(want.astype("float64") -
                                       got.astype("float64")))) if want.size else 0.0
            if diff > atol:
                raise ExportParityError(
                    f"{format} export differs from the Keras model by up to "
                    f"{diff:.3g} (tolerance {atol:g}) on output {index} for "
                    f"input shape {shape}."
                )
            worst = max(worst, diff)
    return worst, shapes


def median_latency_ms(fn, batch, repeats=10) -> float:
    """Median wall time of `fn(batch)` in milliseconds, after one warm-up call.

    Example:

    ```python
    keraslm.exporting.median_latency_ms(run_exported, batch, repeats=20)
    ```
    """
    fn(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(batch)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def keras_reference(model):
    """A function running `model` in inference mode and returning numpy.

    Example:

    ```python
    reference = keraslm.exporting.keras_reference(model)
    logits = reference(batch)  # a numpy array
    ```
    """

    def run(batch):
        outputs = model(batch, training=False)
        if isinstance(outputs, dict):
            return {k: np.asarray(v) for k, v in outputs.items()}
        if isinstance(outputs, (list, tuple)):
            return [np.asarray(o) for o in outputs]
        return np.asarray(outputs)

    return run


def finish(format, path, model, runtime_fn, inputs, atol, details=None):
    """Checks parity, measures latency and returns the `ExportResult`.

    The shared last step of every exporter: `runtime_fn(batch)` runs the
    exported artifact.

    Args:
        format: str. The exporter name.
        path: str. The artifact written.
        model: the Keras model exported.
        runtime_fn: callable. Runs the artifact on one input batch.
        inputs: list of input batches for `check_parity`.
        atol: float. Largest allowed absolute difference.
        details: dict or None. Exporter-specific facts for the report.

    Returns:
        `ExportResult`.

    Raises:
        ExportParityError: the artifact disagrees with the Keras model.

    Example:

    ```python
    session = onnxruntime.InferenceSession(path)
    return keraslm.exporting.finish(
        "onnx", path, model, lambda batch: session.run(None, {"inputs": batch})[0],
        inputs, atol, details={"opset": 17})
    ```
    """
    reference = keras_reference(model)
    max_diff, shapes = check_parity(reference, runtime_fn, inputs, atol=atol,
                                    format=format)
    largest = max(inputs, key=lambda b: np.size(b))
    return ExportResult(
        format=format,
        path=str(path),
        size_bytes=artifact_size(path),
        max_abs_diff=max_diff,
        tolerance=atol,
        shapes_checked=shapes,
        keras_latency_ms=median_latency_ms(reference, largest),
        runtime_latency_ms=median_latency_ms(runtime_fn, largest),
        details=details or {},
    )
