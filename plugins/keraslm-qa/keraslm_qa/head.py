"""The `qa_span` head."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keraslm_qa")
class SpanLogits(keras.layers.Layer):
    """Start and end logits for every token, padding masked out.

    Projects hidden states `(batch, length, hidden)` to `(batch, 2, length)`:
    row 0 holds start logits, row 1 end logits. Positions where
    `padding_mask` is False get a very negative logit, so they are never
    predicted and cost nothing in the loss.

    Args:
        dropout: float. Dropout before the projection. Defaults to `0.0`.

    Example:

    ```python
    layer = keraslm_qa.head.SpanLogits()
    logits = layer(np.random.rand(2, 9, 16), padding_mask=np.ones((2, 9), bool))
    ```
    """

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout

    def build(self, hidden_states_shape, padding_mask_shape=None):
        self.dropout_layer = keras.layers.Dropout(self.dropout,
                                                  dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(2, dtype=self.dtype_policy, name="span")
        self.dense.build(hidden_states_shape)

    def call(self, hidden_states, padding_mask=None, training=None):
        logits = self.dense(self.dropout_layer(hidden_states, training=training))
        logits = ops.cast(ops.transpose(logits, (0, 2, 1)), "float32")
        if padding_mask is not None:
            keep = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)
            logits = ops.where(keep, logits, -1e9)
        return logits

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return (hidden_states_shape[0], 2, hidden_states_shape[1])

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout}


def qa_span_model(backbone, dropout=0.0, padding_id=0):
    """Builds the QA task model on top of `backbone`.

    Args:
        backbone: a Keras model mapping token ids `(batch, length)` (question
            and context packed together, `padding_id` for padding) to hidden
            states `(batch, length, hidden)`.
        dropout: float. Defaults to `0.0`.
        padding_id: int. Defaults to `0`.

    Returns:
        A `keras.Model` from token ids to span logits `(batch, 2, length)`.

    Example:

    ```python
    model = keraslm.registry.task_heads.build("qa_span", backbone=backbone)
    model.compile(loss=keraslm.registry.losses.build("span"), optimizer="adam")
    ```
    """
    from keraslm.heads import padding_mask_of

    token_ids = backbone.input
    # A named layer, not a bare op: a bare op's name could collide with the
    # op names of a backbone loaded from an earlier run (--init-from).
    padding_mask = padding_mask_of(backbone, padding_id)
    logits = SpanLogits(dropout=dropout, name="qa_span")(backbone.output,
                                                         padding_mask=padding_mask)
    return keras.Model(token_ids, logits, name="qa_span_model")
