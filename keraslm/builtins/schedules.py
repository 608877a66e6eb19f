"""Built-in learning-rate schedules."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_schedules(register):
    register("constant", "keraslm.optimizers:constant_schedule",
             description="The same learning rate at every step.")
    register("warmup_cosine", "keraslm.optimizers:warmup_cosine_schedule",
             description="Linear warmup, then cosine decay.")
