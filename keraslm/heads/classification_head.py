import keras
from keras import ops

POOLINGS = ("cls", "mean", "max")


@keras.saving.register_keras_serializable(package="keraslm")
class ClassificationHead(keras.layers.Layer):
    """Pools a sequence of hidden states and classifies it.

    `"cls"` takes the first position (the `[CLS]` token of a BERT-style
    encoder); `"mean"` and `"max"` pool over real tokens only, using the
    padding mask (an explicit `padding_mask` argument or the Keras mask
    propagated by the backbone), so padding never changes the prediction.

    Args:
        num_classes: int. Number of output classes.
        pooling: str. One of `"cls"`, `"mean"`, `"max"`. Defaults to `"cls"`.
        hidden_dim: int or None. Width of an extra tanh projection after
            pooling (as in BERT's pooler); `None` for none. Defaults to `None`.
        dropout: float. Dropout rate before the output layer. Defaults to `0.0`.
        activation: str or None. Output activation; `None` returns logits.
            Defaults to `None`.

    Example:

    ```python
    head = keraslm.heads.ClassificationHead(num_classes=2, pooling="mean")
    hidden = np.random.rand(4, 16, 32).astype("float32")
    mask = np.ones((4, 16), dtype=bool)
    logits = head(hidden, padding_mask=mask)   # shape (4, 2)
    ```
    """

    def __init__(self, num_classes, pooling="cls", hidden_dim=None, dropout=0.0,
                 activation=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError("`num_classes` must be a positive integer. "
                             f"Received: num_classes={num_classes!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}. "
                             f"Received: pooling={pooling!r}")
        self.num_classes = num_classes
        self.pooling = pooling
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        if self.hidden_dim:
            self.pooler = keras.layers.Dense(self.hidden_dim, activation="tanh",
                                             dtype=self.dtype_policy, name="pooler")
            self.pooler.build((input_shape[0], features))
            features = self.hidden_dim
        else:
            self.pooler = None
        self.dropout_layer = keras.layers.Dropout(self.dropout,
                                                  dtype=self.dtype_policy)
        self.output_dense = keras.layers.Dense(self.num_classes,
                                               dtype=self.dtype_policy,
                                               name="logits")
        self.output_dense.build((input_shape[0], features))

    def call(self, hidden_states, padding_mask=None, mask=None, training=None):
        if padding_mask is None:
            padding_mask = mask
        if self.pooling == "cls":
            pooled = hidden_states[:, 0, :]
        else:
            if padding_mask is None:
                padding_mask = ops.ones(ops.shape(hidden_states)[:2], dtype="bool")
            weights = ops.cast(ops.expand_dims(padding_mask, -1),
                               hidden_states.dtype)
            if self.pooling == "mean":
                total = ops.sum(hidden_states * weights, axis=1)
                count = ops.maximum(ops.sum(weights, axis=1), 1.0)
                pooled = total / count
            else:
                very_negative = ops.cast(-1e4 if hidden_states.dtype == "float16"
                                         else -1e9, hidden_states.dtype)
                pooled = ops.max(ops.where(weights > 0, hidden_states,
                                           very_negative), axis=1)
        if self.pooler is not None:
            pooled = self.pooler(pooled)
        pooled = self.dropout_layer(pooled, training=training)
        return self.activation(self.output_dense(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "activation": keras.activations.serialize(self.activation),
        }
