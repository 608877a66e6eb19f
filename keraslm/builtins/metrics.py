"""Built-in metrics."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    register("perplexity", "keraslm.metrics:perplexity",
             description="exp(mean token cross-entropy), padding ignored.")
