"""Built-in learning-rate schedules."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_schedules(register):
    register("constant", "keraslm.schedules:constant_schedule",
             description="The same learning rate at every step.")
    register("step", "keraslm.schedules:step_schedule",
             description="Multiply by gamma every step_size steps.")
    register("exponential", "keraslm.schedules:exponential_schedule",
             description="lr * decay_rate ** (step / decay_steps).")
    register("cosine", "keraslm.schedules:cosine_schedule",
             description="Cosine annealing to alpha * lr.")
    register("warmup_cosine", "keraslm.schedules:warmup_cosine_schedule",
             description="Linear warmup, then cosine decay.")
    register("warmup_linear", "keraslm.schedules:WarmupLinearDecay",
             description="Linear warmup, then linear decay (BERT).")
