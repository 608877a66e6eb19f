"""Entity tag schemes: checking IOB2 and IOB1 tags, converting to IOB2, spans.

Both schemes tag each word `O` (outside), `B-TYPE` or `I-TYPE`:

- IOB2 (also called BIO): every entity starts with `B-`; `I-` continues an
  entity of the same type. `I-PER` after `O` is an error.
- IOB1 (CoNLL-2003's original files): `I-` starts an entity too; `B-` only
  starts an entity right after another of the same type.

The task stores IOB2 only (one label per entity start), so IOB1 input is
converted: an `I-TYPE` that does not continue a `TYPE` entity becomes
`B-TYPE`. Entities are read from tags as conlleval and seqeval's default
mode read them (`entities`, which is keraslm's
`keraslm.evaluation.entities.entity_spans`; `split_tag` is that module's
too: one implementation, shared with the core `tag` task).

Example:

```python
from keraslm_ner import schemes

schemes.to_iob2(["I-PER", "I-PER", "B-PER", "O"], "iob1")
# ['B-PER', 'I-PER', 'B-PER', 'O']
schemes.entities(["B-PER", "I-PER", "B-PER", "O", "B-LOC"])
# [('PER', 0, 1), ('PER', 2, 2), ('LOC', 4, 4)]
```
"""

from keraslm.evaluation.entities import entity_spans as entities
from keraslm.evaluation.entities import split_tag

__all__ = ["SCHEMES", "TagError", "entities", "scheme_name", "split_tag", "to_iob2"]

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
