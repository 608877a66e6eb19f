"""Optimizers and learning-rate schedules registered by keraslm."""

import keras


def sgd(learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
    """SGD with optional (Nesterov) momentum; `clipnorm`/`global_clipnorm` pass through.

    Example:

    ```python
    optimizer = keraslm.registry.optimizers.build("sgd", momentum=0.9)
    ```
    """
    return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                nesterov=nesterov, **kwargs)


def adam(learning_rate=1e-3, **kwargs):
    """Adam; keyword arguments go to `keras.optimizers.Adam`.

    Example:

    ```python
    optimizer = keraslm.registry.optimizers.build("adam", global_clipnorm=1.0)
    ```
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, **kwargs)


@keras.saving.register_keras_serializable(package="keraslm")
class AdamW(keras.optimizers.AdamW):
    """AdamW that never decays biases, normalization scales or embeddings.

    Decoupled weight decay (Loshchilov & Hutter) is applied only to variables
    of rank 2 or more that are not embedding tables: biases and LayerNorm
    gamma/beta (rank 1) and any variable whose path contains "embedding" are
    left alone, as in BERT and GPT-2 training recipes. Other arguments are
    those of `keras.optimizers.AdamW`.

    Args:
        learning_rate: float or schedule. Defaults to `1e-3`.
        weight_decay: float. Defaults to `0.01`.
        decay_embeddings: bool. Decay the embedding tables too (rank-2
            variables whose path contains "embedding"); with tied output
            logits the token embedding is also the output layer, and decaying
            it regularizes a small language model trained for many epochs.
            Defaults to `False`.

    Example:

    ```python
    optimizer = keraslm.registry.optimizers.build("adamw", weight_decay=0.1)
    ```

    References:
        - [Loshchilov & Hutter, 2019](https://arxiv.org/abs/1711.05101)
    """

    def __init__(self, learning_rate=1e-3, weight_decay=0.01, decay_embeddings=False,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         **kwargs)
        self.decay_embeddings = bool(decay_embeddings)

    def _use_weight_decay(self, variable):
        # Inside `apply` the TensorFlow backend passes tf.Variables, which
        # have no `path`; their `name` holds the path ("dense/kernel:0").
        path = getattr(variable, "path", None) or variable.name
        if len(variable.shape) < 2:
            return False
        if "embedding" in path.lower() and not self.decay_embeddings:
            return False
        return super()._use_weight_decay(variable)

    def get_config(self):
        return {**super().get_config(), "decay_embeddings": self.decay_embeddings}


def constant_schedule(learning_rate=1e-3):
    """A constant learning rate (a float, which Keras optimizers accept)."""
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


def _check_steps(**values):
    for name, value in values.items():
        if int(value) != value or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. "
                             f"Received: {name}={value}")


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
    """Smooth exponential decay: `lr * decay_rate ** (step / decay_steps)`."""
    _check_steps(decay_steps=decay_steps)
    return keras.optimizers.schedules.ExponentialDecay(
        learning_rate, decay_steps=int(decay_steps), decay_rate=decay_rate)


def cosine_schedule(learning_rate=1e-3, decay_steps=1000, alpha=0.0):
    """Cosine annealing from `learning_rate` to `alpha * learning_rate`."""
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
