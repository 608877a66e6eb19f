"""Optimizers registered by keraslm (`keraslm.registry.optimizers`).

The learning-rate schedules live in `keraslm.schedules`; their names are
re-exported here for imports written before the split (for example
`benchmarks/shakespeare_pilot_jax.py`), and so that importing this module
still registers `WarmupLinearDecay` with Keras, as an optimizer saved with
that schedule needs.
"""

import keras

from keraslm.schedules import (  # noqa: F401
    WarmupLinearDecay,
    constant_schedule,
    cosine_schedule,
    exponential_schedule,
    step_schedule,
    warmup_cosine_schedule,
)


class GlobalClipAcrossReplicas:
    """Mixin: `global_clipnorm` clips the global gradient under `tf.distribute`.

    A Keras optimizer clips inside `apply`, before it sums the gradients of
    the replicas: each replica's gradient is clipped on its own, and the sum
    is neither the clipped global gradient nor what one device computes
    (measured: 0.03 apart after 6 steps with two replicas and
    `global_clipnorm=0.05`). With this mixin `apply` first all-reduces the
    gradients (each replica's loss is already scaled by 1/replicas, so the
    sum is the global gradient), clips that by `global_clipnorm`, and hands
    each replica its share (1/replicas) to the usual update, whose own clip
    then has nothing left to do and whose sum gives back the clipped global
    gradient. With one replica, or without `global_clipnorm`, nothing changes.

    keraslm's `sgd`, `adam` and `adamw` have it; `keraslm.train` refuses
    `--strategy mirrored` with `global_clipnorm` for an optimizer without it.
    A plugin optimizer gets it by listing it first among its bases.

    Example:

    ```python
    @keras.saving.register_keras_serializable(package="my_plugin")
    class Lion(keraslm.optimizers.GlobalClipAcrossReplicas, keras.optimizers.Lion):
        pass
    ```
    """

    def apply(self, grads, trainable_variables=None):
        return super().apply(_clip_global_gradient(self, list(grads)),
                             trainable_variables)


def _clip_global_gradient(optimizer, grads):
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    clip = optimizer.global_clipnorm
    if not clip or context is None or context.num_replicas_in_sync == 1:
        return grads
    replicas = context.num_replicas_in_sync
    present = [i for i, g in enumerate(grads) if g is not None]
    dense = [tf.convert_to_tensor(grads[i]) for i in present]  # IndexedSlices too
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
    clipped, _ = tf.clip_by_global_norm(total, clip)
    for i, gradient in zip(present, clipped):
        grads[i] = gradient / replicas
    return grads


@keras.saving.register_keras_serializable(package="keraslm")
class SGD(GlobalClipAcrossReplicas, keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose `global_clipnorm` clips the global
    gradient under `tf.distribute` (`GlobalClipAcrossReplicas`)."""


@keras.saving.register_keras_serializable(package="keraslm")
class Adam(GlobalClipAcrossReplicas, keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose `global_clipnorm` clips the global
    gradient under `tf.distribute` (`GlobalClipAcrossReplicas`)."""


def sgd(learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
    """SGD with optional (Nesterov) momentum; `clipnorm`/`global_clipnorm` pass through.

    Example:

    ```python
    optimizer = keraslm.registry.optimizers.build("sgd", momentum=0.9)
    ```
    """
    return SGD(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
               **kwargs)


def adam(learning_rate=1e-3, **kwargs):
    """Adam; keyword arguments go to `keras.optimizers.Adam`.

    Example:

    ```python
    optimizer = keraslm.registry.optimizers.build("adam", global_clipnorm=1.0)
    ```
    """
    return Adam(learning_rate=learning_rate, **kwargs)


sgd.forwards_kwargs_to = keras.optimizers.SGD  # what `accepts()` checks keys against
adam.forwards_kwargs_to = keras.optimizers.Adam


@keras.saving.register_keras_serializable(package="keraslm")
class AdamW(GlobalClipAcrossReplicas, keras.optimizers.AdamW):
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
