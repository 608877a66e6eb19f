"""Built-in metrics."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    register("perplexity", "keraslm.metrics:perplexity",
             description="exp(mean token cross-entropy), padding ignored.")
    register("confusion_matrix", "keraslm.metrics:ConfusionMatrix",
             description="(true, predicted) counts, rows true, as scikit-learn's.")
    register("macro_f1", "keraslm.metrics:MacroF1",
             description="F1 averaged over the classes present (scikit-learn's macro).")
