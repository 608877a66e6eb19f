"""Attention probabilities of keraslm's Transformer models, and their heatmaps."""

import numpy as np


def _functional_class():
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - a Keras that moved it
        return None
    return Functional


def _describe(model):
    return f"{type(model).__name__} '{getattr(model, 'name', '?')}'"


def attention_blocks(model):
    """The Transformer blocks of `model`'s graph, in the order they run.

    Args:
        model: a functional Keras model of one input (token ids), such as
            `keraslm.models.transformer_lm(...)`,
            `keraslm.models.transformer_encoder(...)` or a task model built
            on them (a classify run's model).

    Returns:
        list of `keraslm.layers.TransformerEncoderBlock` (decoder blocks
        included, a subclass).

    Raises:
        ValueError: the model is not functional, has several inputs (a
            seq2seq model), or has no Transformer block (an LSTM, a bag of
            n-grams).
    """
    from keraslm.layers import TransformerEncoderBlock

    functional = _functional_class()
    if functional is None or not isinstance(model, functional):
        raise ValueError(f"Attention scores need a functional Keras model (what keraslm's "
                         f"builders and task heads make). Received: {_describe(model)}.")
    if len(model.inputs) != 1:
        names = [getattr(t, "name", "?") for t in model.inputs]
        raise ValueError(f"Attention scores need a model with one input (token ids); a "
                         f"seq2seq model is not supported. Received: {_describe(model)} "
                         f"with inputs {names}.")
    blocks = [op for op in model.operations if isinstance(op, TransformerEncoderBlock)]
    if not blocks:
        nested = [op.name for op in model.operations
                  if hasattr(op, "_flatten_layers") and any(
                      isinstance(layer, TransformerEncoderBlock)
                      for layer in op._flatten_layers(include_self=False))]
        if nested:
            raise ValueError(f"The Transformer blocks of {_describe(model)} are inside the "
                             f"nested model(s) {nested}; pass a model whose graph holds the "
                             f"blocks themselves (keraslm's task models do).")
        kinds = sorted({type(op).__name__ for op in model.operations
                        if type(op).__name__ != "InputLayer"})
        raise ValueError(f"Attention scores need a Transformer model (layers "
                         f"TransformerEncoderBlock or TransformerDecoderBlock). Received: "
                         f"{_describe(model)} without attention; its layers: {kinds}.")
    return blocks


def _graph_nodes(model, blocks):
    """Each block's call in `model`'s graph (a block may be called elsewhere too)."""
    # Keras keeps the graph's calls as keys `f"{id(op)}_ib-{index}"`.
    in_graph = getattr(model, "_nodes", None)
    nodes = []
    for block in blocks:
        candidates = [node for index, node in enumerate(block._inbound_nodes)
                      if in_graph is None or f"{id(block)}_ib-{index}" in in_graph]
        if len(candidates) != 1:
            raise ValueError(f"Block '{block.name}' is called {len(candidates)} times in "
                             f"{_describe(model)}; attention scores need one call per block.")
        nodes.append(candidates[0])
    return nodes


def attention_scores(model, token_ids):
    """The attention probabilities of every layer and head of a Transformer.

    Runs the model's graph up to each Transformer block and calls the block
    on the same inputs with `return_attention_scores=True` (dropout off),
    so the probabilities are those the model computes: each row (query)
    sums to 1 over the keys; in causal self-attention (decoder blocks) the
    entries above the diagonal are 0, and padded keys (id 0) get 0.

    Args:
        token_ids: int array-like `(length,)` for one sequence or
            `(batch, length)`.
        model: see `attention_blocks`: a keraslm Transformer model
            (`transformer_lm`, `transformer_encoder`) or a task model built
            on one.

    Returns:
        float32 NumPy array `(layers, heads, query, key)` for one sequence,
        `(batch, layers, heads, query, key)` for a batch.

    Example:

    ```python
    import numpy as np
    import keraslm

    model = keraslm.models.transformer_lm(
        vocabulary_size=100, num_layers=2, num_heads=4, hidden_dim=32,
        intermediate_dim=64, max_sequence_length=16)
    scores = keraslm.interpret.attention_scores(model, [2, 17, 9, 40])
    scores.shape                  # (2, 4, 4, 4)
    np.triu(scores[0, 0], 1)      # zeros: causal
    ```
    """
    import keras
    from keras import ops

    ids = np.asarray(token_ids)
    single = ids.ndim == 1
    if ids.ndim not in (1, 2) or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"`token_ids` must be a non-empty integer array of shape (length,) "
                         f"or (batch, length). Received: shape {ids.shape}, dtype {ids.dtype}")
    if single:
        ids = ids[None, :]
    blocks = attention_blocks(model)
    nodes = _graph_nodes(model, blocks)
    tensors = {id(t): t for node in nodes for t in node.arguments.keras_tensors}
    probe = keras.Model(model.inputs, list(tensors.values()), name=f"{model.name}_probe")
    values = probe(ops.convert_to_tensor(ids.astype("int32")), training=False)
    values = dict(zip(tensors, values if isinstance(values, (list, tuple)) else [values]))
    layers = []
    for block, node in zip(blocks, nodes):
        args, kwargs = node.arguments.fill_in(values)
        kwargs = {**kwargs, "return_attention_scores": True, "training": False}
        _, scores = block(*args, **kwargs)[:2]
        layers.append(np.asarray(ops.convert_to_numpy(ops.cast(scores, "float32"))))
    scores = np.stack(layers, axis=1)  # (batch, layers, heads, query, key)
    return scores[0] if single else scores


def plot_attention(scores, tokens, path, *, key_tokens=None, title=None, layer_names=None,
                   masked=None):
    """Heatmaps of attention probabilities: one per layer (rows) and head (columns).

    Each heatmap has the query tokens down the side and the key tokens
    along the top, on one colour scale for all of them, from 0 to the
    largest probability (so that the spread-out attention of long inputs is
    not all one dark colour).
    Masked cells (the upper triangle of causal attention, padded keys) are
    drawn light grey, so they are told apart from attention that is merely
    small.

    Args:
        scores: array `(layers, heads, query, key)` (from `attention_scores`).
        tokens: list of str. The query tokens' labels (e.g. the labels of
            `keraslm.interpret.token_pieces`).
        path: str. The PNG to write.
        key_tokens: list of str or None. The keys' labels; defaults to
            `tokens` (self-attention).
        title: str or None. The figure's title.
        layer_names: list of str or None. Row names; defaults to
            `layer 0`, `layer 1`, ...
        masked: bool array broadcastable to `scores`, or None. The masked
            cells. Defaults to `scores == 0`: the model gives masked cells
            exactly 0 (float32 softmax of a -1e9 score).

    Returns:
        `path`.

    Example:

    ```python
    tokens = [p.label for p in keraslm.interpret.token_pieces(tokenizer, ids)]
    keraslm.interpret.plot_attention(
        keraslm.interpret.attention_scores(model, ids), tokens, "attention.png")
    ```
    """
    from keraslm.interpret._common import pyplot, save_figure

    scores = np.asarray(scores, dtype="float32")
    if scores.ndim != 4:
        raise ValueError(f"`scores` must have shape (layers, heads, query, key). "
                         f"Received: shape {scores.shape}")
    num_layers, num_heads, query_length, key_length = scores.shape
    key_tokens = list(tokens if key_tokens is None else key_tokens)
    tokens = list(tokens)
    if len(tokens) != query_length or len(key_tokens) != key_length:
        raise ValueError(f"One token label per query and per key is needed. Received: "
                         f"{len(tokens)} query and {len(key_tokens)} key labels for scores "
                         f"of shape {scores.shape}")
    masked = (scores == 0) if masked is None else np.broadcast_to(masked, scores.shape)
    layer_names = layer_names or [f"layer {i}" for i in range(num_layers)]
    plt = pyplot()
    import matplotlib

    colormap = matplotlib.colormaps["viridis"].with_extremes(bad="#dcdcdc")
    top = float(scores.max()) if scores.max() > 0 else 1.0
    longest = max(query_length, key_length)
    cell = max(2.4, 0.19 * longest + 1.0)  # inches per heatmap
    font = 8 if longest <= 24 else (6 if longest <= 48 else 4.5)
    figure, axes = plt.subplots(num_layers, num_heads, squeeze=False, layout="constrained",
                                figsize=(cell * num_heads + 1.2, cell * num_layers + 0.8))
    image = None
    for layer in range(num_layers):
        for head in range(num_heads):
            axis = axes[layer, head]
            values = np.ma.masked_array(scores[layer, head], masked[layer, head])
            image = axis.imshow(values, cmap=colormap, vmin=0.0, vmax=top,
                                interpolation="nearest", aspect="equal")
            axis.set_xticks(range(key_length), key_tokens, rotation=90, fontsize=font)
            axis.set_yticks(range(query_length), tokens, fontsize=font)
            axis.tick_params(length=0, pad=1)
            axis.xaxis.tick_top()
            axis.set_title(f"{layer_names[layer]}, head {head}", fontsize=9, pad=4)
            if head == 0:
                axis.set_ylabel("query", fontsize=8)
            axis.set_xlabel("key", fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.colorbar(image, ax=axes, shrink=1.0 if num_layers == 1 else 0.8, aspect=30,
                    label="attention probability (grey: masked)")
    return save_figure(figure, path)
