"""XLA modes of the train step: "off", "on" (the whole step) and "fusible".

`"fusible"` compiles the element-wise work of the step with XLA (fused
kernels, no per-op overhead) and leaves every matrix product to
TensorFlow's own kernels (oneDNN on x86 CPUs). On a CPU that is faster than
either pure mode: XLA:CPU runs its dots through Eigen, slower than oneDNN,
while TensorFlow without XLA runs each element-wise op separately. It is
TensorFlow's auto-clustering restricted to fusible ops (see
`keraslm._xla_flags` for the two `TF_XLA_FLAGS` this needs, which `import
keraslm` adds while TensorFlow is not yet loaded).

Example:

```python
import keraslm  # before keras / tensorflow

result = keraslm.train(task="lm", train="train.txt", xla="fusible", steps=100)

# or around any Keras training of your own (compile with jit_compile=False):
with keraslm.training.fusible_xla():
    model.fit(dataset, epochs=1)
```
"""

import contextlib

def xla_mode(value):
    """`False`/`"off"`, `True`/`"on"` or `"fusible"` -> "off", "on" or "fusible".

    Raises ValueError for anything else, naming the value.
    """
    if value is True or value == "on":
        return "on"
    if value is False or value == "off":
        return "off"
    if value == "fusible":
        return "fusible"
    raise ValueError("`xla` must be one of 'off' (or False), 'on' (or True) or "
                     f"'fusible'. Received: xla={value!r}")


def check_fusible_available():
    """Raises RuntimeError, saying why and what to do, if "fusible" cannot run."""
    from keraslm import _xla_flags

    if not _xla_flags.fusible_flags_active():
        raise RuntimeError("xla='fusible' is not available in this process: "
                           + _xla_flags.inactive_reason())


@contextlib.contextmanager
def fusible_xla():
    """Turns on fusible-only XLA auto-clustering for `tf.function`s first run inside.

    Functions instantiated while the context is active (a Keras train step
    compiled with `jit_compile=False` runs its first call there) get their
    element-wise ops compiled by XLA; matrix products stay TensorFlow ops.
    The previous auto-clustering setting is restored on exit.

    Raises:
        RuntimeError: TensorFlow was loaded without the flags this needs
            (import keraslm before keras/tensorflow).

    Example:

    ```python
    import keraslm
    import keras

    model.compile(optimizer="adamw", loss=loss, jit_compile=False)
    with keraslm.training.fusible_xla():
        model.fit(dataset, epochs=1)
    ```
    """
    check_fusible_available()
    import tensorflow as tf

    previous = tf.config.optimizer.get_jit()
    tf.config.optimizer.set_jit("autoclustering")
    try:
        yield
    finally:
        tf.config.optimizer.set_jit(previous or False)
