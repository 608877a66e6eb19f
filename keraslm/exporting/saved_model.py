"""The built-in `saved_model` exporter."""

from keraslm.exporting.parity import finish


def export_saved_model(model, path, *, inputs, atol=1e-4):
    """Writes a TensorFlow SavedModel with a `serve` endpoint and checks it.

    The SavedModel is reloaded with `tf.saved_model.load` (no Keras involved)
    and its `serve` function is compared with the Keras model on `inputs`.

    Example:

    ```python
    result = keraslm.export(model, "out/saved_model", format="saved_model")
    ```
    """
    import numpy as np
    import tensorflow as tf

    model.export(path, format="tf_saved_model", verbose=False)
    loaded = tf.saved_model.load(path)

    def run(batch):
        outputs = loaded.serve(tf.constant(batch))
        if isinstance(outputs, dict):
            return {k: np.asarray(v) for k, v in outputs.items()}
        if isinstance(outputs, (list, tuple)):
            return [np.asarray(o) for o in outputs]
        return np.asarray(outputs)

    return finish("saved_model", path, model, run, inputs, atol,
                  details={"endpoint": "serve", "tensorflow": tf.__version__})
