"""Task models: a backbone's graph extended with a head.

Each function here is what a `register_task_heads` entry builds:
`factory(backbone, **config)` where `backbone` is a functional Keras model
from token ids to hidden states `(batch, length, hidden_dim)`. The head is
added to the backbone's own graph (not nested), so tied layers stay shared
and the task model saves and loads as one `.keras` file.

Everything a head adds to that graph is a layer with a name chosen here and
checked against the backbone's operations (`_unique_name`), never a bare
`keras.ops` call: a bare op is named by a per-process counter, and a backbone
loaded from an earlier run keeps the names of the process that saved it, so
in a new process (`keraslm train --init-from RUN`) an op of the head would
take the name of one of the backbone's ops and Keras would refuse the model
(`The name "not_equal" is used 2 times in the model`).
"""

import keras

from keraslm.heads.classification_head import ClassificationHead
from keraslm.heads.masked_lm_head import MaskedLMTransform, OutputBias
from keraslm.heads.padding_mask import PaddingMask


def _token_embedding(backbone, token_embedding):
    if token_embedding is not None:
        return token_embedding
    for layer in backbone._flatten_layers(include_self=False):
        if type(layer).__name__ == "TokenEmbedding":
            return layer
    raise ValueError(
        f"Backbone '{backbone.name}' has no `keraslm.layers.TokenEmbedding` to "
        "tie the output projection to; pass `token_embedding=`."
    )


def _unique_name(backbone, name):
    """`name`, or `name_1`, `name_2`, ... if `backbone` already has an op so named."""
    operations = getattr(backbone, "operations", None) or backbone.layers
    taken = {operation.name for operation in operations}
    candidate, index = name, 0
    while candidate in taken:
        index += 1
        candidate = f"{name}_{index}"
    return candidate


def padding_mask_of(backbone, padding_id=0):
    """`backbone.input != padding_id`, as a layer with a name the backbone does
    not use: what a head that needs the padding mask should call (a bare
    `ops.not_equal` collides with the op names of a backbone loaded from an
    earlier run).

    Example:

    ```python
    mask = keraslm.heads.padding_mask_of(backbone)
    logits = MyHead()(backbone.output, padding_mask=mask)
    ```
    """
    layer = PaddingMask(padding_id=padding_id,
                        name=_unique_name(backbone, "padding_mask"))
    return layer(backbone.input)


def causal_lm_model(backbone, token_embedding=None):
    """Next-token logits from the transposed token embedding (tied weights).

    A `keraslm.models.TransformerLM` or `LSTMLM` already is a causal LM and
    is returned unchanged.

    Example:

    ```python
    lm = keraslm.registry.task_heads.build("causal_lm", backbone=backbone)
    ```
    """
    from keraslm.models import LSTMLM, TransformerLM

    if isinstance(backbone, (TransformerLM, LSTMLM)):
        return backbone
    embedding = _token_embedding(backbone, token_embedding)
    logits = embedding(backbone.output, reverse=True)
    return keras.Model(backbone.input, logits, name="causal_lm")


def masked_lm_model(backbone, token_embedding=None, activation="gelu",
                    tie_weights=False):
    """Masked-LM head: BERT's transform, then logits over the vocabulary.

    Returns logits `(batch, length, vocabulary_size)` at every position; the
    loss only counts masked positions (labels elsewhere are ignored).

    Args:
        backbone: the encoder (`hidden_states_model()` of a builder).
        token_embedding: the `TokenEmbedding` to tie to; found in the
            backbone when None.
        activation: str. The transform's activation. Defaults to `"gelu"`.
        tie_weights: bool. True: project onto the token embedding (BERT,
            keras-hub's `MaskedLMHead`) plus a bias per token; False (the
            default): a separate `Dense` projection with bias. Measured on
            character-level Shakespeare (2 layers, 64 wide, 600 steps,
            `benchmarks/mlm_tying.py`), the tied head stays at the most
            frequent character's share while the separate one learns from
            the context; tie for large vocabularies where the extra
            `hidden_dim x vocabulary_size` weights matter.

    Example:

    ```python
    mlm = keraslm.registry.task_heads.build("masked_lm", backbone=encoder)
    tied = keraslm.registry.task_heads.build("masked_lm", backbone=encoder,
                                             tie_weights=True)
    ```
    """
    embedding = _token_embedding(backbone, token_embedding)
    hidden = MaskedLMTransform(
        activation=activation,
        name=_unique_name(backbone, "masked_lm_transform"))(backbone.output)
    if tie_weights:
        logits = embedding(hidden, reverse=True)
        logits = OutputBias(name=_unique_name(backbone, "masked_lm_bias"))(logits)
    else:
        logits = keras.layers.Dense(
            embedding.vocabulary_size, name=_unique_name(backbone, "masked_lm_logits"))(hidden)
    return keras.Model(backbone.input, logits, name="masked_lm")


def classification_model(backbone, num_classes, pooling="auto", hidden_dim=None,
                         dropout=0.1, padding_id=0):
    """Sequence classification: pooled hidden states -> class logits.

    `pooling="auto"` (the default) is `"cls"` (the first position) for
    attention backbones and `"mean"` (over real tokens) for backbones with
    recurrent layers, whose first position has seen only the first token.

    Example:

    ```python
    model = keraslm.registry.task_heads.build(
        "classification", backbone=encoder, num_classes=2, pooling="mean")
    ```
    """
    if pooling == "auto":
        recurrent = any(isinstance(layer, keras.layers.RNN)
                        for layer in backbone._flatten_layers(include_self=False))
        pooling = "mean" if recurrent else "cls"
    head = ClassificationHead(num_classes=num_classes, pooling=pooling,
                              hidden_dim=hidden_dim, dropout=dropout,
                              name=_unique_name(backbone, "classification_head"))
    logits = head(backbone.output, padding_mask=padding_mask_of(backbone, padding_id))
    return keras.Model(backbone.input, logits, name="classifier")


def token_classification_model(backbone, num_classes, dropout=0.1):
    """Per-token classification (tagging): hidden states -> tag logits.

    Example:

    ```python
    tagger = keraslm.registry.task_heads.build(
        "token_classification", backbone=encoder, num_classes=17)
    ```
    """
    hidden = keras.layers.Dropout(
        dropout, name=_unique_name(backbone, "tagging_dropout"))(backbone.output)
    logits = keras.layers.Dense(
        num_classes, name=_unique_name(backbone, "tagging_logits"))(hidden)
    return keras.Model(backbone.input, logits, name="token_classifier")


def seq2seq_lm_model(backbone):
    """Encoder-decoder LM: a `keraslm.models.Seq2SeqTransformer` as is.

    Example:

    ```python
    translator = keraslm.registry.task_heads.build("seq2seq_lm", backbone=model)
    ```
    """
    from keraslm.models import Seq2SeqTransformer

    if not isinstance(backbone, Seq2SeqTransformer):
        raise ValueError(
            "The seq2seq_lm head needs a `keraslm.models.Seq2SeqTransformer` "
            f"backbone. Received: {type(backbone).__name__}."
        )
    return backbone
