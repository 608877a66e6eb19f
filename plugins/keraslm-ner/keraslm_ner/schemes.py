"""Entity tag schemes: checking IOB2 and IOB1 tags, converting to IOB2, spans.

Both schemes tag each word `O` (outside), `B-TYPE` or `I-TYPE`:

- IOB2 (also called BIO): every entity starts with `B-`; `I-` continues an
  entity of the same type. `I-PER` after `O` is an error.
- IOB1 (CoNLL-2003's original files): `I-` starts an entity too; `B-` only
  starts an entity right after another of the same type.

The task stores IOB2 only (one label per entity start), so IOB1 input is
converted: an `I-TYPE` that does not continue a `TYPE` entity becomes
`B-TYPE`. Entities are read from tags as conlleval and seqeval's default
mode read them (`entities`).

Example:

```python
from keraslm_ner import schemes

schemes.to_iob2(["I-PER", "I-PER", "B-PER", "O"], "iob1")
# ['B-PER', 'I-PER', 'B-PER', 'O']
schemes.entities(["B-PER", "I-PER", "B-PER", "O", "B-LOC"])
# [('PER', 0, 1), ('PER', 2, 2), ('LOC', 4, 4)]
```
"""

SCHEMES = {"iob2": "iob2", "bio": "iob2", "iob1": "iob1"}
"""Accepted `scheme` values (lower case) and the scheme each one names."""


class TagError(ValueError):
    """A tag that does not fit the scheme.

    Attributes:
        index: int. The position of the word in its sentence.
    """

    def __init__(self, message, index):
        super().__init__(message)
        self.index = index


def scheme_name(scheme) -> str:
    """`"iob2"` or `"iob1"` for an accepted `scheme` value (any case)."""
    name = SCHEMES.get(str(scheme).lower()) if isinstance(scheme, str) else None
    if name is None:
        raise ValueError(
            f"`scheme` must be one of {', '.join(SCHEMES)} (IOB2 = BIO: every entity "
            f"starts with B-; IOB1: I- starts an entity, B- separates two adjacent "
            f"entities of one type). Received: scheme={scheme!r}")
    return name


def split_tag(tag):
    """`(prefix, type)`: `("O", None)` or `("B" | "I", "TYPE")`; None if malformed."""
    if tag == "O":
        return "O", None
    prefix, dash, kind = tag.partition("-")
    if prefix in ("B", "I") and dash and kind.strip() == kind and kind:
        return prefix, kind
    return None


def to_iob2(tags, scheme="iob2"):
    """The IOB2 tags of one sentence's `tags`, checked against `scheme`.

    Args:
        tags: list of str. One sentence's tags.
        scheme: str. A key of `SCHEMES`. Defaults to `"iob2"`.

    Returns:
        list of str. The same tags in IOB2 (a new list).

    Raises:
        TagError: a tag that is neither `O` nor `B-`/`I-` followed by a type,
            or (IOB2) an `I-` tag that does not continue an entity of its
            type. `index` is the word's position.
    """
    scheme = scheme_name(scheme)
    converted, previous = [], None  # previous: the type of the open entity
    for index, tag in enumerate(tags):
        parts = split_tag(tag)
        if parts is None:
            raise TagError(
                f"{tag!r} is not an entity tag. Expected 'O', 'B-TYPE' or 'I-TYPE' "
                f"(upper-case B/I, a dash, then the entity type, e.g. 'B-PER').", index)
        prefix, kind = parts
        if prefix == "I" and kind != previous:
            if scheme == "iob2":
                after = f"after {tags[index - 1]!r}" if index else "first in its sentence"
                raise TagError(
                    f"{tag!r} ({after}) continues no {kind} entity; in IOB2 (BIO) every "
                    f"entity starts with B-. Expected 'B-{kind}' here; if the file is "
                    f"IOB1 (I- starts an entity), set scheme='iob1' (--scheme iob1).",
                    index)
            prefix = "B"
        converted.append("O" if prefix == "O" else f"{prefix}-{kind}")
        previous = kind
    return converted


def entities(tags):
    """The entities of one sentence's tags: `[(type, first, last)]`, inclusive.

    Reads IOB1 and IOB2 (and ill-formed sequences, such as predictions) as
    conlleval and `seqeval.metrics.sequence_labeling.get_entities` do: an
    entity starts at `B-X`, or at `I-X` after `O` or after another type, and
    ends before the next `O`, `B-` or change of type. Malformed tags
    (`X-PER`, which `EntityTask` refuses when reading) count as `O` here.
    """
    found, start, kind = [], None, None
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, tag_kind = split_tag(tag) or ("O", None)
        ends = start is not None and (prefix != "I" or tag_kind != kind)
        if ends:
            found.append((kind, start, index - 1))
            start = kind = None
        if prefix != "O" and (prefix == "B" or start is None):
            start, kind = index, tag_kind
    return found
