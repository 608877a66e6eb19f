"""Shared by the `keraslm.interpret` modules: matplotlib, PNG files, the
ids a task feeds its model for a text, and how tokens are shown."""

import os
from typing import NamedTuple


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (files only, no display)."""
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - a dependency of keraslm
        raise ImportError("keraslm's pictures need matplotlib: "
                          "`pip install matplotlib`.") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path, dpi=100):
    """Writes `figure` to `path` atomically (the format from its extension),
    closes it and returns `path`."""
    from keraslm.training.run_directory import atomic_path

    path = os.fspath(path)
    extension = os.path.splitext(path)[1] or ".png"
    try:
        with atomic_path(path, extension) as partial:
            figure.savefig(partial, dpi=dpi)
    finally:
        pyplot().close(figure)
    return path


def write_text(path, text):
    """Writes `text` to `path` atomically and returns `path`."""
    from keraslm.training.run_directory import atomic_write

    atomic_write(os.fspath(path), text)
    return os.fspath(path)


class Piece(NamedTuple):
    """How one token id is shown."""

    label: str
    """Short and printable: axis tick labels (`"##ing"`, `"␣"`, `"[CLS]"`)."""
    text: str
    """What it adds to the running text (`"ing"`, `" "`, `"[CLS]"`)."""
    space_before: bool
    """Whether running text puts a space before it (words: yes, word pieces
    that continue a word, characters and bytes: no)."""
    special: bool
    """Whether it is one of the shared special tokens (`[CLS]`, `[SEP]`, ...)."""


_VISIBLE = {" ": "␣", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printable(text):
    return "".join(_VISIBLE.get(c, c if c.isprintable() else f"\\x{ord(c):02x}")
                   for c in text) or "''"


def token_pieces(tokenizer, ids):
    """`[Piece]` for `ids`: labels for plot axes and text for highlighting.

    Word pieces (`##ing`) continue the previous word, SentencePiece pieces
    start a word where they begin with `▁`, characters and bytes are shown
    as they are (a space as `␣` in labels) and words are separated by
    spaces.
    """
    from keraslm import text
    from keraslm.text import special_tokens

    special = set(tokenizer.special_token_ids.values())
    ids = [int(i) for i in ids]
    # One copy of the vocabulary (`id_to_token` makes one per call).
    vocabulary = tokenizer.get_vocabulary() if hasattr(tokenizer, "get_vocabulary") else None
    pieces = []
    for token_id in ids:
        if vocabulary is not None and 0 <= token_id < len(vocabulary):
            token = vocabulary[token_id]
        else:
            token = tokenizer.id_to_token(token_id)  # says what is out of range
        if token_id in special:
            pieces.append(Piece(token, token, True, True))
        elif isinstance(tokenizer, text.WordPieceTokenizer) and token.startswith("##"):
            pieces.append(Piece(token, token[2:], False, False))
        elif isinstance(tokenizer, text.SentencePieceTokenizer):
            starts = token.startswith("▁")
            shown = token[1:] if starts else token
            pieces.append(Piece(_printable(token), shown, starts, False))
        elif isinstance(tokenizer, text.ByteTokenizer):
            byte = token_id - len(special_tokens.SPECIAL_TOKENS)
            shown = chr(byte) if 32 <= byte < 127 or byte in (9, 10) else token
            pieces.append(Piece(_printable(shown), shown, False, False))
        elif isinstance(tokenizer, text.CharacterTokenizer):
            pieces.append(Piece(_printable(token), token, False, False))
        else:
            pieces.append(Piece(_printable(token), token, True, False))
    return pieces


def framing(task_or_head):
    """`"cls_sep"` (`[CLS] text [SEP]`: classify, tag, mlm) or `"plain"`
    (the text's ids: causal language models) for a task or head name."""
    head = getattr(task_or_head, "head", task_or_head)
    return "plain" if head in ("causal_lm", "seq2seq_lm") else "cls_sep"


def encode_text(tokenizer, text, frame="cls_sep", sequence_length=None):
    """The ids a model is fed for `text`: `[CLS] ids [SEP]` (`frame="cls_sep"`,
    as `keraslm.data.classification_dataset` makes them) or the text's ids
    (`"plain"`), truncated to `sequence_length` as the task's datasets are.

    Returns:
        `(ids, truncated)`: a list of int and how many of the text's tokens
        were cut off.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"The text must be a non-empty string. Received: {text!r}")
    if frame not in ("cls_sep", "plain"):
        raise ValueError(f"`frame` must be 'cls_sep' or 'plain'. Received: frame={frame!r}")
    ids = [int(i) for i in tokenizer.encode(text)]
    room = None
    if sequence_length is not None:
        room = sequence_length - (2 if frame == "cls_sep" else 0)
        if room < 1:
            raise ValueError(f"`sequence_length` leaves no room for the text. "
                             f"Received: sequence_length={sequence_length}")
    kept = ids if room is None else ids[:room]
    if frame == "cls_sep":
        kept = [tokenizer.cls_id, *kept, tokenizer.sep_id]
    return kept, len(ids) - (len(kept) - (2 if frame == "cls_sep" else 0))


def max_sequence_length(model):
    """The longest input a model's learned positions allow, or None."""
    from keraslm.layers import PositionEmbedding

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, PositionEmbedding):
            return int(layer.sequence_length)
    return None
