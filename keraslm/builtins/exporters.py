"""Built-in exporters."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_exporters(register):
    register("saved_model", "keraslm.exporting.saved_model:export_saved_model",
             description="TensorFlow SavedModel, checked in TensorFlow.",
             file_extension="")
