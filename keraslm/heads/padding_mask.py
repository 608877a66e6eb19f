import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm")
class PaddingMask(keras.layers.Layer):
    """The padding mask of a batch of token ids: `token_ids != padding_id`.

    A layer rather than a bare `keras.ops.not_equal` so that a head adds it to
    a backbone's graph under a name of its own choosing. A bare op gets an
    automatic name (`"not_equal"`, `"not_equal_1"`, ...) from a per-process
    counter; a backbone loaded from a `.keras` file keeps the automatic names
    of the process that saved it, so in a fresh process the head's op would
    get the same name as the backbone's own mask and the task model could not
    be built.

    Args:
        padding_id: int. The id of the padding token. Defaults to `0`.

    Example:

    ```python
    mask = keraslm.heads.PaddingMask()(np.array([[5, 7, 0, 0]]))
    # [[True, True, False, False]]
    ```
    """

    def __init__(self, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding_id, bool) or not isinstance(padding_id, int):
            raise ValueError("`padding_id` must be an integer. "
                             f"Received: padding_id={padding_id!r}")
        self.padding_id = padding_id
        self.built = True

    def call(self, token_ids):
        return ops.not_equal(token_ids, self.padding_id)

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "padding_id": self.padding_id}
