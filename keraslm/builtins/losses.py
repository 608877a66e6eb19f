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
    register("label_smoothed_crossentropy",
             "keraslm.losses:label_smoothed_crossentropy",
             description="Masked cross-entropy with label smoothing 0.1.")
    register("focal", "keraslm.losses:SparseFocalLoss",
             description="Focal loss on integer labels (Lin et al., 2017).")
    register("infonce", "keraslm.losses:InfoNCE",
             description="Contrastive InfoNCE with in-batch negatives.")
