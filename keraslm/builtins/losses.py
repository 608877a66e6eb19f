"""Built-in losses."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_losses(register):
    register(
        "masked_sparse_categorical_crossentropy",
        "keraslm.losses:MaskedSparseCategoricalCrossentropy",
        description="Token cross-entropy averaged over real tokens (padding "
                    "ignored), optional label smoothing.",
    )
