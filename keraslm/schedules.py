"""Learning-rate schedules registered by keraslm (`keraslm.registry.schedules`).

Each factory takes `learning_rate` and step counts and returns what a Keras
optimizer accepts as `learning_rate`: a float or a
`keras.optimizers.schedules.LearningRateSchedule`.

Example:

```python
schedule = keraslm.registry.schedules.build(
    "warmup_cosine", learning_rate=3e-4, warmup_steps=100, decay_steps=900)
optimizer = keraslm.registry.optimizers.build("adamw", learning_rate=schedule)
```
"""

import keras


def _check_steps(**values):
    for name, value in values.items():
        if int(value) != value or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. "
                             f"Received: {name}={value}")


def constant_schedule(learning_rate=1e-3):
    """A constant learning rate (a float, which Keras optimizers accept).

    Example:

    ```python
    keraslm.registry.schedules.build("constant", learning_rate=3e-4)  # 0.0003
    ```
    """
    return float(learning_rate)


def warmup_cosine_schedule(learning_rate=1e-3, decay_steps=1000,
                           warmup_steps=0, alpha=0.0):
    """Linear warmup from 0 to `learning_rate` over `warmup_steps`, then cosine decay.

    Args:
        learning_rate: float. The peak learning rate. Defaults to `1e-3`.
        decay_steps: int. Steps of cosine decay after the warmup.
        warmup_steps: int. Steps of linear warmup. Defaults to `0`.
        alpha: float. Final learning rate as a fraction of the peak.

    Example:

    ```python
    schedule = keraslm.registry.schedules.build(
        "warmup_cosine", learning_rate=3e-4, warmup_steps=100, decay_steps=900)
    float(schedule(100))  # 3e-4
    ```
    """
    _check_steps(decay_steps=decay_steps, warmup_steps=warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else learning_rate,
        decay_steps=int(decay_steps),
        alpha=alpha,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=int(warmup_steps),
    )


def step_schedule(learning_rate=1e-3, step_size=1000, gamma=0.1):
    """Step decay: multiply the rate by `gamma` every `step_size` steps.

    Example:

    ```python
    schedule = keraslm.registry.schedules.build("step", learning_rate=0.1,
                                                step_size=10, gamma=0.5)
    float(schedule(25))  # 0.025
    ```
    """
    _check_steps(step_size=step_size)
    if step_size == 0:
        raise ValueError("`step_size` must be positive. Received: step_size=0")
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=int(step_size), decay_rate=gamma, staircase=True)


def exponential_schedule(learning_rate=1e-3, decay_steps=1000, decay_rate=0.96):
    """Smooth exponential decay: `lr * decay_rate ** (step / decay_steps)`.

    Example:

    ```python
    schedule = keraslm.registry.schedules.build(
        "exponential", learning_rate=0.1, decay_steps=30, decay_rate=0.5)
    float(schedule(60))  # 0.025
    ```
    """
    _check_steps(decay_steps=decay_steps)
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=int(decay_steps), decay_rate=decay_rate)


def cosine_schedule(learning_rate=1e-3, decay_steps=1000, alpha=0.0):
    """Cosine annealing from `learning_rate` to `alpha * learning_rate`.

    Example:

    ```python
    schedule = keraslm.registry.schedules.build(
        "cosine", learning_rate=0.2, decay_steps=100, alpha=0.05)
    float(schedule(100))  # 0.01
    ```
    """
    _check_steps(decay_steps=decay_steps)
    return keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=int(decay_steps), alpha=alpha)


@keras.saving.register_keras_serializable(package="keraslm")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `learning_rate`, then linear decay to `end_learning_rate`.

    The BERT schedule. After `warmup_steps + decay_steps` the rate stays at
    `end_learning_rate`.

    Args:
        learning_rate: float. Peak rate. Defaults to `1e-3`.
        warmup_steps: int. Defaults to `0`.
        decay_steps: int. Defaults to `1000`.
        end_learning_rate: float. Defaults to `0.0`.

    Example:

    ```python
    schedule = keraslm.registry.schedules.build(
        "warmup_linear", learning_rate=1e-4, warmup_steps=10, decay_steps=90)
    ```
    """

    def __init__(self, learning_rate=1e-3, warmup_steps=0, decay_steps=1000,
                 end_learning_rate=0.0):
        _check_steps(warmup_steps=warmup_steps, decay_steps=decay_steps)
        self.learning_rate = float(learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        warmup = ops.cast(self.warmup_steps, "float32")
        decay = ops.cast(max(self.decay_steps, 1), "float32")
        warming = self.learning_rate * step / ops.maximum(warmup, 1.0)
        progress = ops.clip((step - warmup) / decay, 0.0, 1.0)
        decaying = (self.learning_rate
                    + (self.end_learning_rate - self.learning_rate) * progress)
        return ops.where(step < warmup, warming, decaying)

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "warmup_steps": self.warmup_steps,
                "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate}
