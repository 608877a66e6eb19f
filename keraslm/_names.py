"""Name suggestions for unknown names: a leaf module imported by the rest.

```python
from keraslm._names import suggest, unknown_name_message

suggest("focall", ["focal", "span"])              # 'focal'
unknown_name_message("loss", "focall", ["focal"])
# "Unknown loss 'focall'. Available: focal. Did you mean 'focal'?"
```
"""

import difflib


def suggest(name, candidates):
    """Returns the candidate closest to `name`, or None if none is close.

    Case and `-`/`_` are ignored, so `--max-answer-length` finds
    `max_answer_length`.
    """
    candidates = list(candidates)
    folded = {str(c).lower().replace("-", "_"): c for c in candidates}
    key = str(name).lower().replace("-", "_")
    if key in folded:
        return folded[key]
    matches = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def unknown_name_message(kind, name, available):
    """The message for an unknown name: what exists and the closest match."""
    available = sorted(available)
    message = f"Unknown {kind} '{name}'. Available: "
    message += ", ".join(available) if available else "(none registered)"
    message += "."
    closest = suggest(name, available)
    if closest is not None:
        message += f" Did you mean '{closest}'?"
    return message
