"""Token saliency of a classification: gradient x input over the token embeddings."""

import html
from typing import NamedTuple

import numpy as np

REDUCTIONS = ("sum", "l2")


class TokenSaliency(NamedTuple):
    """What `token_saliency` returns."""

    token_ids: list
    """The ids the model was fed (`[CLS] text [SEP]`, truncated)."""
    pieces: list
    """A `keraslm.interpret.Piece` per id (label, text, spacing)."""
    scores: np.ndarray
    """float `(length,)`: one saliency per token (see `token_saliency`)."""
    target: int
    """The class explained (an index into the labels)."""
    target_label: str
    """Its name (`str(target)` without labels)."""
    probabilities: np.ndarray
    """float `(num_classes,)`: the model's softmax for the text."""
    labels: list
    """The class names (`["0", "1", ...]` without labels)."""
    reduction: str
    """`"sum"` or `"l2"`."""


# Operations that work on each position alone: the embedding of token `i`
# stays the embedding of token `i` through them.
_POSITION_WISE = ("Add", "LayerNormalization", "Dropout", "Multiply")
# They read only the length of their input, never its values.
_SHAPE_ONLY = ("PositionEmbedding", "SinusoidalPositionEncoding")


def _consumers(model, tensor):
    """The calls in `model`'s graph that take `tensor` as an input."""
    in_graph = getattr(model, "_nodes", None)
    found = []
    for op in model.operations:
        for index, node in enumerate(op._inbound_nodes):
            if in_graph is not None and f"{id(op)}_ib-{index}" not in in_graph:
                continue
            if any(t is tensor for t in node.arguments.keras_tensors):
                found.append((op, node))
    return found


def embedding_output(model):
    """The token embeddings a model's first position-mixing layer reads.

    From the output of the `keraslm.layers.TokenEmbedding` that reads the
    model's input, through the operations that work on each position alone
    (adding position and n-gram embeddings, the embedding layer norm,
    dropout), to the tensor the first Transformer block, recurrent layer or
    pooling head receives: `(batch, length, hidden_dim)`, row `i` for token
    `i`.

    Args:
        model: a functional Keras model with one input (token ids).

    Returns:
        `(tensor, path)`: the Keras tensor and the names of the layers from
        the token embedding to it (`["token_embedding", "add",
        "embeddings_layer_norm", "embeddings_dropout"]`).
    """
    from keraslm.interpret.attention import _describe, _functional_class
    from keraslm.layers import TokenEmbedding

    functional = _functional_class()
    if functional is None or not isinstance(model, functional) or len(model.inputs) != 1:
        raise ValueError(f"Token saliency needs a functional Keras model with one input "
                         f"(token ids). Received: {_describe(model)}.")
    tensor, path = None, []
    for op, node in _consumers(model, model.inputs[0]):
        if isinstance(op, TokenEmbedding) and not node.arguments.kwargs.get("reverse"):
            tensor, path = node.output_tensors[0], [op.name]
            break
    if tensor is None:
        raise ValueError(f"Token saliency needs a model whose token ids go through a "
                         f"`keraslm.layers.TokenEmbedding`. Received: {_describe(model)} "
                         f"without one on its input.")
    while True:
        consumers = [(op, node) for op, node in _consumers(model, tensor)
                     if type(op).__name__ not in _SHAPE_ONLY]
        if len(consumers) != 1 or type(consumers[0][0]).__name__ not in _POSITION_WISE:
            return tensor, path
        op, node = consumers[0]
        tensor = node.output_tensors[0]
        path.append(op.name)


def token_saliency(model, tokenizer, text, target=None, *, labels=None, sequence_length=None,
                   reduction="sum"):
    """Which tokens of `text` move a classifier towards a class: gradient x input.

    The score of the class `target` is its log-probability (log-softmax of
    the model's logits). The input is the embedding of each token as the
    model's first layer that mixes positions reads it (`embedding_output`):
    token embedding plus position (and n-gram) embedding, after the
    embedding layer norm of a BERT-style encoder (before a layer norm,
    gradient x input is degenerate: a layer norm does not change when its
    input is scaled). For token `i` with that vector `e_i`, the saliency is
    the gradient of the score with respect to `e_i` times `e_i`, reduced
    over the hidden dimension:

    - `"sum"` (the default): `sum_d grad_id * e_id`, signed. Positive
      tokens push the prediction towards `target`, negative ones away from
      it; it is the first-order change of the score when `e_i` is scaled,
      `d score / d s` at `s = 1` for `e_i -> s * e_i`. For a bag of
      embeddings (mean pooling straight into the logits) it is exactly the
      token's share of the target's logit minus the probability-weighted
      mean of its shares of all logits.
    - `"l2"`: `||grad_i * e_i||_2`, how much, without a direction.

    The text is fed as the classify task feeds it, `[CLS] text [SEP]`,
    truncated to `sequence_length` (the special tokens get scores too).

    Args:
        model: a classification model: token ids `(batch, length)` ->
            logits `(batch, num_classes)`, whose ids go through a
            `keraslm.layers.TokenEmbedding` (every keraslm backbone); a
            functional model whose graph holds its layers (a run's model).
        tokenizer: the run's `keraslm.text.Tokenizer`.
        text: str.
        target: int, str or None. The class to explain: an index, a label
            name (with `labels`), or None for the predicted class.
        labels: list of str or None. The class names (a run's
            `task.label_vocabulary.labels`).
        sequence_length: int or None. Longer texts are truncated; None: the
            model's longest input (learned positions), if it has one.
        reduction: str. `"sum"` or `"l2"`, see above.

    Returns:
        `TokenSaliency` (token ids, pieces, scores, target, probabilities).

    Example:

    ```python
    from keraslm.training import load_run

    config, task, model, tokenizer = load_run("runs/reviews")
    result = keraslm.interpret.token_saliency(
        model, tokenizer, "Great coffee, awful price.",
        labels=task.label_vocabulary.labels, sequence_length=config.sequence_length)
    for piece, score in zip(result.pieces, result.scores):
        print(f"{piece.label:>12} {score:+.3f}")
    keraslm.interpret.write_saliency_html(result, "saliency.html")
    ```
    """
    import keras
    import tensorflow as tf

    from keraslm.interpret._common import encode_text, max_sequence_length, token_pieces

    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}. "
                         f"Received: reduction={reduction!r}")
    embedded, _ = embedding_output(model)
    if sequence_length is None:
        sequence_length = max_sequence_length(model)
    ids, _ = encode_text(tokenizer, text, "cls_sep", sequence_length)
    token_ids = tf.constant([ids], dtype="int32")
    vectors = tf.identity(keras.Model(model.inputs[0], embedded)(token_ids, training=False))
    # The same graph, fed the embeddings as a second input. One text has no
    # padding, so the Keras mask an embedding may carry (all True) is not needed.
    from_embeddings = keras.Model([model.inputs[0], embedded], model.outputs[0])
    with tf.GradientTape() as tape:
        tape.watch(vectors)
        logits = from_embeddings([token_ids, vectors], training=False)
        if len(logits.shape) != 2:
            raise ValueError(f"Token saliency needs a classification model (logits "
                             f"(batch, num_classes)). Received outputs of shape "
                             f"{tuple(logits.shape)}.")
        log_probabilities = tf.nn.log_softmax(tf.cast(logits, "float32"), axis=-1)
        num_classes = int(log_probabilities.shape[-1])
        labels = [str(i) for i in range(num_classes)] if labels is None else list(labels)
        if len(labels) != num_classes:
            raise ValueError(f"`labels` must name the model's {num_classes} classes. "
                             f"Received: {len(labels)} labels {labels}")
        target = _target_index(target, labels, log_probabilities[0].numpy())
        score = log_probabilities[0, target]
    gradient = tape.gradient(score, vectors)
    product = tf.cast(gradient * vectors, "float32")[0]
    if reduction == "sum":
        scores = tf.reduce_sum(product, axis=-1)
    else:
        scores = tf.norm(product, axis=-1)
    return TokenSaliency(ids, token_pieces(tokenizer, ids), scores.numpy(), target,
                         labels[target], np.exp(log_probabilities[0].numpy()), labels,
                         reduction)


def _target_index(target, labels, log_probabilities):
    if target is None:
        return int(np.argmax(log_probabilities))
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if 0 <= int(target) < len(labels):
            return int(target)
    elif isinstance(target, str) and target in labels:
        return labels.index(target)
    raise ValueError(f"`target` must be a class index in [0, {len(labels)}) or one of the "
                     f"labels {labels}. Received: target={target!r}")


def _color(score, scale):
    """Green towards the target, red away (sum); orange for l2 magnitudes."""
    strength = 0.0 if scale == 0 else min(1.0, abs(float(score)) / scale)
    if score >= 0:
        return (0.13, 0.63, 0.27, 0.85 * strength)
    return (0.84, 0.15, 0.16, 0.85 * strength)


def _scale(scores):
    return float(np.max(np.abs(scores))) if len(scores) else 0.0


def _caption(result):
    probability = result.probabilities[result.target]
    if result.reduction == "sum":
        how = (f"green: towards '{result.target_label}', red: away from it; "
               f"gradient x embedding summed over the hidden dimension")
    else:
        how = "darker: larger ||gradient x embedding||"
    return (f"target '{result.target_label}' (p = {probability:.3f}); {how}; "
            f"largest |score| {_scale(result.scores):.3g}")


def saliency_html(result, title=None):
    """An HTML page of the text with each token highlighted by its saliency.

    Token text is escaped (`<`, `&` and quotes are shown, never
    interpreted); each token's score is in its tooltip, and a table lists
    the tokens by |score|.

    Args:
        result: a `TokenSaliency`.
        title: str or None. The page's heading.

    Returns:
        str, a complete HTML document.

    Example:

    ```python
    page = keraslm.interpret.saliency_html(result, title="reviews run")
    ```
    """
    scale = _scale(result.scores)
    spans = []
    for index, (piece, score) in enumerate(zip(result.pieces, result.scores)):
        red, green, blue, alpha = _color(score, scale)
        style = (f"background-color: rgba({red * 255:.0f}, {green * 255:.0f}, "
                 f"{blue * 255:.0f}, {alpha:.3f})")
        classes = "token special" if piece.special else "token"
        text = html.escape(piece.text).replace("\n", "<br>")
        if not text.strip():
            text = text.replace(" ", "&nbsp;") or "&nbsp;"
        space = " " if piece.space_before and index else ""
        tooltip = f"{html.escape(piece.label, quote=True)}: {score:+.4g}"
        spans.append(f'{space}<span class="{classes}" style="{style}" '
                     f'title="{tooltip}">{text}</span>')
    order = np.argsort(-np.abs(result.scores), kind="stable")
    rows = "\n".join(
        f"<tr><td>{rank + 1}</td><td>{html.escape(result.pieces[i].label)}</td>"
        f"<td>{result.scores[i]:+.4g}</td></tr>"
        for rank, i in enumerate(order[:20]))
    probabilities = ", ".join(f"{html.escape(label)} {p:.3f}" for label, p in
                              zip(result.labels, result.probabilities))
    heading = html.escape(title or "Token saliency")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{heading}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.9; }}
.text {{ font-size: 1.15em; border: 1px solid #ccc; padding: 0.8em; }}
.token {{ padding: 0.1em 0.15em; border-radius: 0.25em; }}
.special {{ font-size: 0.75em; color: #666; }}
.caption {{ color: #444; font-size: 0.9em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td {{ padding: 0 0.8em; border-bottom: 1px solid #eee; }}
</style>
</head>
<body>
<h1>{heading}</h1>
<p class="caption">{html.escape(_caption(result))}</p>
<p class="caption">probabilities: {probabilities}</p>
<div class="text">{"".join(spans)}</div>
<h2>Most salient tokens</h2>
<table>
<tr><th>#</th><th>token</th><th>score</th></tr>
{rows}
</table>
</body>
</html>
"""


def write_saliency_html(result, path, title=None):
    """Writes `saliency_html(result, title)` to `path` (atomically); returns `path`."""
    from keraslm.interpret._common import write_text

    return write_text(path, saliency_html(result, title))


def plot_saliency(result, path, title=None, top=15):
    """A PNG of the saliency: the text highlighted token by token, and a bar
    chart of the `top` tokens by |score|.

    Args:
        result: a `TokenSaliency`.
        path: str. The PNG to write.
        title: str or None.
        top: int. Bars shown. Defaults to `15`.

    Returns:
        `path`.

    Example:

    ```python
    keraslm.interpret.plot_saliency(result, "saliency.png", title="reviews run")
    ```
    """
    from keraslm.interpret._common import pyplot, save_figure

    plt = pyplot()
    scale = _scale(result.scores)
    width, margin, line_height = 11.0, 0.35, 0.32  # inches
    figure = plt.figure(figsize=(width, 4))
    renderer = figure.canvas.get_renderer()

    def inches(text, size):
        artist = figure.text(0, 0, text, fontsize=size, family="DejaVu Sans")
        extent = artist.get_window_extent(renderer).width / figure.dpi
        artist.remove()
        return extent

    # Lay the tokens out as running text (in inches), wrapping at the right edge.
    placed, x, line = [], 0.0, 0
    for index, (piece, score) in enumerate(zip(result.pieces, result.scores)):
        shown = piece.text.replace("\n", "\\n")
        if not shown.strip():
            shown = "␣" if shown == " " else piece.label
        size = 8 if piece.special else 11
        extent = inches(shown, size) + 0.05  # the highlight's padding
        gap = 0.07 if piece.space_before and index else 0.015
        if x and x + gap + extent > width - 2 * margin:
            x, line, gap = 0.0, line + 1, 0.0
        x += gap if x else 0.0
        placed.append((x, line, shown, size, piece.special, score))
        x += extent
    bars = min(top, len(result.scores))
    text_height = (line + 1) * line_height
    bar_height = 0.24 * bars + 0.2
    top_space, gap, bottom_space = 0.95, 0.75, 0.6
    height = top_space + text_height + gap + bar_height + bottom_space
    figure.set_size_inches(width, height)
    for x, line, shown, size, special, score in placed:
        figure.text((margin + x) / width, 1 - (top_space + line * line_height) / height,
                    shown, fontsize=size, va="top", ha="left", family="DejaVu Sans",
                    color="#555" if special else "black",
                    bbox=dict(boxstyle="square,pad=0.12", linewidth=0,
                              facecolor=_color(score, scale)))
    figure.text(margin / width, 1 - (top_space - 0.3) / height, _caption(result),
                fontsize=9, va="bottom", ha="left")
    bar_axis = figure.add_axes((2.0 / width, bottom_space / height,
                                (width - 2.0 - margin) / width, bar_height / height))
    order = np.argsort(-np.abs(result.scores), kind="stable")[:top][::-1]
    bar_axis.barh(range(len(order)), result.scores[order],
                  color=[_color(result.scores[i], scale)[:3] for i in order])
    bar_axis.set_yticks(range(len(order)), [result.pieces[i].label for i in order],
                        fontsize=9)
    bar_axis.axvline(0, color="black", linewidth=0.6)
    bar_axis.set_xlabel("saliency (gradient x embedding, "
                        f"{'summed' if result.reduction == 'sum' else 'L2 norm'} over the "
                        "hidden dimension)", fontsize=9)
    bar_axis.set_title(f"the {len(order)} most salient tokens", fontsize=9, loc="left")
    bar_axis.grid(axis="x", alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    return save_figure(figure, path)
