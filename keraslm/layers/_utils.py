"""Private helpers shared by the keraslm layers (not part of the public API)."""

import math

import keras
from keras import ops

try:  # Keras keeps implicit masks on tensors; keras-hub reads them the same way.
    from keras.src.backend import get_keras_mask as _get_keras_mask
except ImportError:  # pragma: no cover - very old or very new Keras.
    def _get_keras_mask(x):
        return getattr(x, "_keras_mask", None)


def get_keras_mask(x):
    """Returns the implicit Keras mask attached to `x`, or `None`."""
    if x is None:
        return None
    return _get_keras_mask(x)


def clone_initializer(initializer):
    """Returns a fresh copy of `initializer` so weights are not seeded alike."""
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    return initializer.__class__.from_config(config)


def dense_like_initializer(initializer, fan_in_axes, stacked=False):
    """Wraps `initializer` so a multi-axis kernel gets the scale of a Dense one.

    A kernel of shape `(hidden_dim, num_heads, head_dim)` is initialized as
    the 2D kernel `(hidden_dim, num_heads * head_dim)` of the equivalent
    `Dense` layer, then reshaped; `fan_in_axes` is how many leading axes are
    inputs. With `stacked=True` the axis right after the input axes stacks
    several projections (`(hidden_dim, 3, num_heads, head_dim)` for a fused
    QKV projection): each slice is initialized as its own Dense kernel.
    """

    def init(shape, dtype=None):
        shape = tuple(shape)
        fan_in = math.prod(shape[:fan_in_axes])
        if not stacked:
            fan_out = math.prod(shape[fan_in_axes:])
            return ops.reshape(initializer((fan_in, fan_out), dtype=dtype), shape)
        num_stacked = shape[fan_in_axes]
        fan_out = math.prod(shape[fan_in_axes + 1:])
        # Each slice gets its own clone: an unseeded Keras initializer returns
        # the same values on every call.
        slices = [
            clone_initializer(initializer)((fan_in, fan_out), dtype=dtype)
            for _ in range(num_stacked)
        ]
        return ops.reshape(ops.stack(slices, axis=1), shape)

    return init


def validate_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )


def validate_rate(name, value):
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )


def validate_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )


def merge_padding_and_attention_mask(padding_mask, attention_mask):
    """Merges a `(batch, keys)` padding mask and a 3D attention mask."""
    if padding_mask is None:
        return attention_mask
    # expand_dims, not [:, None]: a new axis on a bool tensor of dynamic
    # shape is a StridedSlice that TFLite builtins cannot run.
    padding_mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, "bool"), 1)
    if attention_mask is None:
        return padding_mask
    return keras.ops.logical_and(
        padding_mask, keras.ops.cast(attention_mask, "bool")
    )
