"""Token ids of a training corpus on disk, written once, read by window after.

A causal-LM corpus is tokenized once, as a stream (a bounded batch of texts
in memory at a time), into one flat file of ids (`uint16` when the
vocabulary fits, else `int32`), each text followed by `[SEP]` as the
in-memory pipeline does. The next run over the same files with the same
tokenizer (a resumed run, a repeated experiment given the same
`--token-cache`) opens that file and starts training at once; training
windows are read from it with `os.pread` (`TokenCache.read_windows`), so
the process's resident memory does not grow with the file. The
cache is keyed by the tokenizer (type, options, vocabulary) and the corpus
options, and checked against the files it came from (path, size, mtime): a
changed file rebuilds it. Files are written beside their final name and
renamed when complete, so an interrupted build leaves no half cache.

Example:

```python
from keraslm import data

corpus = data.Corpus("shards/*.txt.gz", keep_empty=True)
cache = data.TokenCache.build(corpus, tokenizer, "runs/lm/token_cache")
cache.ids.shape, cache.num_texts, cache.rebuilt
lm = data.causal_lm_dataset(cache, tokenizer, sequence_length=128, random_offsets=True)
```
"""

import collections
import contextlib
import hashlib
import json
import os
import time

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from keraslm.data.errors import DataError

FORMAT_VERSION = 1
MANIFEST = "cache.json"
IDS = "ids.bin"


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what decides a tokenizer's ids: type, options, vocabulary."""
    digest = hashlib.sha256()
    digest.update(json.dumps([type(tokenizer).__name__,
                              getattr(tokenizer, "type_name", None),
                              tokenizer.get_config()], sort_keys=True,
                             default=str).encode())
    for token in tokenizer.get_vocabulary():
        digest.update(token.encode("utf-8", errors="surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


class TokenCache:
    """The ids of a corpus on disk (see the module docstring); `ids` is a
    read-only memory map of them, for inspection.

    Attributes:
        ids: 1-D `np.memmap` of every id of the corpus.
        num_texts: int. Texts tokenized.
        num_characters: int. Characters of those texts.
        directory: str. Where the cache lives.
        rebuilt: bool. Whether this call tokenized the corpus (False: the
            cache was valid and reused).
        seconds: float. Time taken to build or open it.
    """

    def __init__(self, directory, manifest, rebuilt, seconds):
        self.directory = directory
        self.manifest = manifest
        self.rebuilt = rebuilt
        self.seconds = seconds
        self.num_texts = manifest["num_texts"]
        self.num_characters = manifest["num_characters"]
        self.ids = np.memmap(os.path.join(directory, IDS), mode="r",
                             dtype=manifest["dtype"], shape=(manifest["num_tokens"],))

    def __len__(self):
        return self.num_texts

    def read_windows(self, starts, length):
        """`ids[(start + j) % num_tokens]` for `j < length`, one row per
        start (a window may wrap past the end to the beginning).

        Read with `os.pread`, not through the memory map: the pages stay in
        the kernel's file cache instead of the process's resident memory,
        which would otherwise grow towards the file's size as random
        windows touch every page.
        """
        total = len(self.ids)
        starts = np.asarray(starts, np.int64) % total
        if length > total:  # a corpus shorter than a window
            return np.asarray(self.ids)[(starts[:, None] + np.arange(length)) % total]
        dtype = self.ids.dtype
        size = dtype.itemsize
        out = np.empty((len(starts), length), dtype)
        fd = self._descriptor()
        for row, start in enumerate(starts.tolist()):
            first = min(length, total - start)
            out[row, :first] = np.frombuffer(os.pread(fd, first * size, start * size), dtype)
            if first < length:
                out[row, first:] = np.frombuffer(
                    os.pread(fd, (length - first) * size, 0), dtype)
        return out

    def _descriptor(self):
        if getattr(self, "_fd", None) is None:
            self._fd = os.open(os.path.join(self.directory, IDS), os.O_RDONLY)
        return self._fd

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    @classmethod
    def build(cls, corpus, tokenizer, directory, *, add_bos=False, progress=None,
              batch_texts=4096, workers=2):
        """Opens the cache for `corpus` + `tokenizer` under `directory`,
        tokenizing the corpus first if there is none or it is out of date.

        Args:
            corpus: a `keraslm.data.Corpus` (or any re-iterable of str with
                a `fingerprint()`; a plain list is fingerprinted by content).
            tokenizer: a `keraslm.text.Tokenizer`.
            directory: str. The cache root; each corpus/tokenizer pair gets
                a subdirectory named by its key.
            add_bos: bool. Start each text with `[CLS]` (bos).
            progress: None or a callable taking one line of text.
            batch_texts: int. Texts tokenized at once (bounds memory).
            workers: int. Threads tokenizing batches. Defaults to `2`.

        Returns:
            `TokenCache`.
        """
        started = time.perf_counter()
        say = progress or (lambda line: None)
        key = {"format": FORMAT_VERSION, "tokenizer": tokenizer_fingerprint(tokenizer),
               "add_bos": bool(add_bos), "options": getattr(corpus, "cache_options", None)}
        key_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        path = os.path.join(os.fspath(directory), key_hash)
        files = _fingerprint(corpus)
        manifest = _read_manifest(path)
        if manifest is not None and manifest.get("key") == key and manifest.get("files") == files:
            say(f"[cache] reusing {path} ({manifest['num_tokens']:,} tokens)")
            return cls(path, manifest, False, time.perf_counter() - started)
        if manifest is not None:
            say(f"[cache] {path} is out of date (its files changed); rebuilding")
        os.makedirs(path, exist_ok=True)
        dtype = "uint16" if tokenizer.vocabulary_size <= np.iinfo(np.uint16).max + 1 else "int32"
        partial = os.path.join(path, f".{IDS}.{os.getpid()}.partial")
        counts = [0, 0, 0]  # tokens, texts, characters written
        last_report = time.perf_counter()
        with open(partial, "wb") as f, ThreadPoolExecutor(max_workers=workers) as pool:
            # Batches are tokenized on `workers` threads (TensorFlow ops
            # release the GIL), a few ahead, and written in order.
            pending = collections.deque()

            def write_oldest():
                ids, texts, characters = pending.popleft()
                flat = ids.result()
                flat.tofile(f)
                counts[0] += len(flat)
                counts[1] += texts
                counts[2] += characters

            tokenize = _tokenizing_function(tokenizer, add_bos, dtype)
            for batch in _batches(corpus, batch_texts):
                pending.append((pool.submit(tokenize, batch),
                                len(batch), sum(map(len, batch))))
                if len(pending) <= 2 * workers:
                    continue
                write_oldest()
                if time.perf_counter() - last_report >= 5.0:
                    last_report = time.perf_counter()
                    rate = counts[2] / (last_report - started)
                    say(f"[cache] tokenized {counts[1]:,} texts, {counts[0]:,} "
                        f"tokens ({rate / 1e6:.1f}M characters/s)")
            while pending:
                write_oldest()
        num_tokens, num_texts, num_characters = counts
        if num_tokens < 2:
            os.remove(partial)
            raise DataError(f"Causal LM data holds {num_tokens} token(s) after "
                            f"tokenization. Expected at least 2 (an input and its next "
                            f"token).")
        os.replace(partial, os.path.join(path, IDS))
        manifest = {"key": key, "files": files, "dtype": dtype, "num_tokens": num_tokens,
                    "num_texts": num_texts, "num_characters": num_characters}
        temporary = os.path.join(path, f".{MANIFEST}.{os.getpid()}.partial")
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        os.replace(temporary, os.path.join(path, MANIFEST))
        seconds = time.perf_counter() - started
        say(f"[cache] wrote {num_tokens:,} tokens of {num_texts:,} texts to {path} "
            f"in {seconds:.1f} s")
        return cls(path, manifest, True, seconds)


def cached_tokenizer(corpus, directory, settings, train, progress=None):
    """The tokenizer `train()` learns from `corpus`, kept under
    `directory/tokenizers/` and loaded from there the next time the same
    files (path, size, mtime) are trained on with the same `settings`.

    A repeated run given the same `--token-cache` thus skips tokenizer
    training as well as tokenization and starts at its first step.

    Args:
        corpus: a `keraslm.data.Corpus` (anything with `fingerprint()`).
        directory: str. The cache root (as for `TokenCache.build`).
        settings: JSON-serializable dict: everything that decides the
            vocabulary (type, size, options).
        train: callable taking no argument, returning the trained tokenizer.
        progress: None or a callable taking one line of text.

    Returns:
        `keraslm.text.Tokenizer`.
    """
    from keraslm.text import load_tokenizer

    say = progress or (lambda line: None)
    key = {"format": FORMAT_VERSION, "settings": settings,
           "options": getattr(corpus, "cache_options", None),
           "files": _fingerprint(corpus)}
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True, default=str)
                              .encode()).hexdigest()[:16]
    path = os.path.join(os.fspath(directory), "tokenizers", key_hash)
    if os.path.isdir(path):
        try:
            tokenizer = load_tokenizer(path)
        except Exception as error:  # damaged: train again
            say(f"[cache] {path} could not be loaded ({error}); training again")
        else:
            say(f"[cache] reusing the tokenizer in {path}")
            return tokenizer
    tokenizer = train()
    partial = f"{path}.{os.getpid()}.partial"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tokenizer.save(partial)
    try:
        os.replace(partial, path)
    except OSError:  # another run saved it meanwhile
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    say(f"[cache] kept the tokenizer in {path}")
    return tokenizer


def _iterate(corpus):
    return iter(corpus)


def _fingerprint(corpus):
    if hasattr(corpus, "fingerprint"):
        return corpus.fingerprint()
    digest = hashlib.sha256()
    for text in corpus:
        digest.update(text.encode("utf-8", errors="surrogatepass"))
        digest.update(b"\0")
    return [digest.hexdigest()]


def _read_manifest(path):
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    ids = os.path.join(path, IDS)
    itemsize = np.dtype(manifest.get("dtype", "int32")).itemsize
    if not os.path.exists(ids) or os.path.getsize(ids) != manifest.get("num_tokens", -1) * itemsize:
        return None  # damaged or incomplete: rebuild
    return manifest


def _batches(corpus, size):
    batch = []
    for text in _iterate(corpus):
        batch.append(text)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _tokenizing_function(tokenizer, add_bos, dtype):
    """A compiled `batch of texts -> flat ids` (one graph per build: no
    per-op Python dispatch, so the worker threads run in parallel)."""
    from keraslm.data.batching import wrap

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def flat_ids(batch):
        # As the in-memory pipeline does: each text, then [SEP].
        ids = wrap(tokenizer.tokenize(batch), np.iinfo(np.int32).max,
                   start_id=tokenizer.bos_id if add_bos else None,
                   end_id=tokenizer.eos_id)
        return ids.flat_values

    def tokenize(batch):
        return flat_ids(tf.constant(batch)).numpy().astype(dtype)

    return tokenize
