import keras


class BuilderModel(keras.Model):
    """A functional model whose config is the arguments of its builder.

    Subclasses build their graph in `__init__`, call
    `super().__init__(inputs=..., outputs=...)`, store each argument named in
    `config_arguments` as an attribute of the same name, and get
    `get_config`/`from_config` (and so `.keras` saving) for free.
    """

    config_arguments = ()

    def store_arguments(self, arguments):
        """Sets each `config_arguments` name from `arguments` (the caller's
        `locals()`); call it after `super().__init__`."""
        for name in self.config_arguments:
            setattr(self, name, arguments[name])

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            **{name: getattr(self, name) for name in self.config_arguments},
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)


class CachedDecodingMixin:
    """`empty_cache` for models whose decoder runs with a key/value cache."""

    def empty_cache(self, batch_size, max_length=None):
        """Zeros `(batch, num_layers, 2, max_length, num_heads, head_dim)`,
        the cache shape `call_with_cache` expects."""
        from keras import ops

        max_length = max_length or self.max_sequence_length
        return ops.zeros((batch_size, self.num_layers, 2, max_length,
                          self.num_heads, self.hidden_dim // self.num_heads),
                         dtype=self.compute_dtype)


def position_layer(position_encoding, max_sequence_length, dtype, name):
    """The position layer for `position_encoding`, or None for rotary."""
    from keraslm.layers import PositionEmbedding, SinusoidalPositionEncoding

    choices = ("learned", "sinusoidal", "rotary")
    if position_encoding not in choices:
        raise ValueError(f"`position_encoding` must be one of {choices}. "
                         f"Received: position_encoding={position_encoding!r}")
    if position_encoding == "learned":
        return PositionEmbedding(sequence_length=max_sequence_length, dtype=dtype,
                                 name=name)
    if position_encoding == "sinusoidal":
        return SinusoidalPositionEncoding(dtype=dtype, name=name)
    return None


def embed(token_embedding, positions, token_ids, start_index=0, scale=None):
    """Token embedding (times `scale`) plus positions from `start_index`."""
    from keras import ops

    x = token_embedding(token_ids)
    if scale is not None:
        x = x * ops.cast(scale, x.dtype)
    if positions is not None:
        x = x + positions(x, start_index=start_index)
    return x


def padding_mask(token_ids):
    """`token_ids != 0`: keraslm's padding id is 0."""
    from keras import ops

    return ops.not_equal(token_ids, 0)
