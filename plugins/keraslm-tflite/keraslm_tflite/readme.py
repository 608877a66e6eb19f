"""The README written beside every export of this plugin: `<artifact>.README.txt`.

`keraslm.export` hands an exporter a temporary name (`.model.1234.partial
.tflite`) and renames it once the checks pass; `final_path` gives back the
name the artifact will have, so the README is written under that name
(`model.tflite.README.txt`, beside `model.tflite.report.json`) by the
exporter's last step. One README per artifact: exports of several formats
into one folder do not overwrite each other's.

Example:

```python
write_readme(".model.77.partial.tflite", "What it takes ...")
# writes model.tflite.README.txt
```
"""

import os
import re

_PARTIAL = re.compile(r"^\.(?P<stem>.+)\.\d+\.partial(?P<extension>.*)$")


def final_path(path):
    """The artifact's final path for a `keraslm.export` temporary name (or
    `path` itself when it is not one)."""
    directory, base = os.path.split(os.fspath(path))
    match = _PARTIAL.match(base)
    if match is None:
        return os.fspath(path)
    return os.path.join(directory, match["stem"] + match["extension"])


def readme_path(path):
    """`<final artifact path>.README.txt`."""
    return final_path(path) + ".README.txt"


def write_readme(path, text):
    """Writes `text` as the README of the artifact at `path`; returns its path."""
    target = readme_path(path)
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(text.rstrip() + "\n")
    return target
