"""Built-in task heads."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_task_heads(register):
    register("classification", "keraslm.heads:ClassificationHead",
             description="Pooled (cls/mean/max) sequence classification.",
             task="classify")
