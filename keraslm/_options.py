"""Option dataclasses: comments as help, checked construction from dicts.

`TrainConfig` and every task's `Options` are dataclasses with a `# comment`
beside each field. This leaf module turns such a class into command-line
help and builds it from a dict (a TOML table, keyword arguments), refusing
unknown keys with a suggestion and values of the wrong type with the value
received and what is expected.

```python
import dataclasses
from keraslm._options import options_from_dict

@dataclasses.dataclass
class Options:
    max_answer_length: int = 30   # longest answer span in tokens

options_from_dict(Options, {"max_answer_length": 8}, "task qa")
```
"""

import dataclasses
import inspect
import re
import types

from keraslm._names import suggest


def field_comments(cls) -> dict:
    """`field -> comment` from the `# ...` beside each field of a dataclass."""
    comments = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = re.match(r"\s+(\w+): [^#]*#\s*(.+)$", line)
            if match:
                comments[match.group(1)] = match.group(2)
    return comments


def field_type(field):
    """The type a field holds, without `| None`."""
    annotation = field.type
    if isinstance(annotation, types.UnionType):
        annotation = next(a for a in annotation.__args__ if a is not type(None))
    return annotation


def _optional(field):
    return (isinstance(field.type, types.UnionType)
            and type(None) in field.type.__args__)


def check_value(field, value, source):
    """Raises ValueError if `value` does not fit `field`'s annotation."""
    if value is None and _optional(field):
        return value
    kind = field_type(field)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind in (str, dict, list):
        ok = isinstance(value, kind)
    else:
        ok = True
    if not ok:
        expected = getattr(kind, "__name__", str(kind))
        if _optional(field):
            expected += " or None"
        raise ValueError(f"`{field.name}` in {source} must be of type {expected}. "
                         f"Received: {field.name}={value!r}")
    return value


def options_from_dict(cls, values, source, others=()):
    """Builds dataclass `cls` from `values`, checking keys and types.

    Args:
        cls: a dataclass.
        values: dict of field values.
        source: str. Where the values come from, for messages.
        others: names that would be valid elsewhere, offered as suggestions.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = {}
    for key, value in dict(values).items():
        if key not in fields:
            closest = suggest(key, [*fields, *others])
            hint = f" Did you mean '{closest}'?" if closest else ""
            known = ", ".join(sorted(fields)) or "none"
            raise ValueError(f"Unknown option '{key}' in {source}.{hint} "
                             f"Known options: {known}.")
        checked[key] = check_value(fields[key], value, source)
    return cls(**checked)
