"""Keep TensorFlow's, absl's and the converters' start-up chatter off the
user's terminal: `stderr_to(path)` sends file descriptor 2 (what C++ logging,
Python warnings and `logging` write) to a log file while it is active, and
hands the caller a stream that still reaches the terminal.

The chatter (`failed call to cuInit`, `Could not find cuda drivers`, absl's
`All log messages before absl::InitializeLog()`, TensorFlow's `CollectionDef`
warning, tf2onnx's stray messages) is written by native code straight to
file descriptor 2, so redirecting `sys.stderr` alone would not catch it.

Example:

```python
with stderr_to("runs/quickstart.log") as terminal:
    import tensorflow  # its start-up lines go to the log
    print("shown to the user", file=terminal)
```
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def stderr_to(path):
    """Redirects file descriptor 2 to `path` (appended) and yields a text
    stream on the terminal's standard error."""
    sys.stderr.flush()
    saved = os.dup(2)
    log = open(path, "a", buffering=1)
    os.dup2(log.fileno(), 2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield terminal
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.close()
        terminal.close()
