import keras


class BuilderModel(keras.Model):
    """A functional model whose config is the arguments of its builder.

    Subclasses build their graph in `__init__`, call
    `super().__init__(inputs=..., outputs=...)`, store each argument named in
    `config_arguments` as an attribute of the same name, and get
    `get_config`/`from_config` (and so `.keras` saving) for free.
    """

    config_arguments = ()

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
