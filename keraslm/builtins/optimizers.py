"""Built-in optimizers."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_optimizers(register):
    register("sgd", "keraslm.optimizers:sgd",
             description="SGD with optional momentum and Nesterov.")
    register("adam", "keraslm.optimizers:adam", description="Adam.")
    register("adamw", "keraslm.optimizers:AdamW",
             description="AdamW; no weight decay on biases, normalization "
                         "scales and embeddings.")
