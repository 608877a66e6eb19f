"""Built-in `keraslm` sub-commands, one module each in `keraslm.commands`.

Handlers and `configure` functions are import strings, so a command's module
(and TensorFlow) is imported only when that command runs or its parser is
built.
"""

from keraslm.hookspecs import hookimpl

COMMANDS = {
    "train": "Train a model for a task; writes a run directory.",
    "evaluate": "Evaluate a run's model on a file: the task's metrics as tables "
                "(--json: JSON), also written to the run's evaluation.json.",
    "generate": "Generate text with a run that decodes (a language model).",
    "export": "Export a run's model (saved_model, onnx, ...) with a parity check "
              "in the target runtime.",
    "plot": "Pictures of a run: training curves, confusion matrix, ROC curve, "
            "attention heatmaps and token saliency (PNG, HTML).",
    "plugins": "List installed plugins, their hooks and components.",
    "tokenizer": "Tokenizer tools: `keraslm tokenizer train FILES... -o DIR`.",
    "launch": "Run a multi-worker training job as local worker processes (TF_CONFIG), "
              "relaunching all from the last checkpoint when one dies.",
    "quickstart": "Train, evaluate, sample and export a small LM on the default "
                  "data (a few minutes on a CPU).",
}


@hookimpl
def register_commands(register):
    for name, description in COMMANDS.items():
        module = f"keraslm.commands.{name}"
        register(name, f"{module}:run", description=description,
                 configure=f"{module}:configure")
