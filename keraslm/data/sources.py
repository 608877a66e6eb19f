"""Corpora given as a file, a directory or a glob, read as a stream.

`--train` (and `keraslm.data.Corpus`) accepts one file, a directory (every
supported file in it, recursively, in sorted order) or a glob
(`"shards/*.txt.gz"`). Files may be gzip-compressed (`.gz`). A `Corpus`
yields its texts one at a time and can be iterated again (each pass re-reads
the files), so a corpus larger than memory is never held: tokenizer trainers
and the token cache (`keraslm.data.token_cache`) consume it as a stream.
Decoding errors name the file, the line and the byte offset, as the
whole-file readers do.

Example:

```python
from keraslm import data

corpus = data.Corpus("../shared/data/shakespeare/*.txt")
len(corpus.files)             # 3
for line in corpus:           # one line at a time, never the whole corpus
    ...
len(corpus)                   # texts (one counting pass, then remembered)
```
"""

import csv
import glob
import gzip
import json
import os
import zlib

from keraslm.data.errors import DataError, where

TEXT_EXTENSIONS = (".txt",)
TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".ndjson")
COMPRESSED = ".gz"
CHUNK_BYTES = 1 << 20


def base_extension(path) -> str:
    """`.txt` for `a.txt` and `a.txt.gz`."""
    name = os.fspath(path).lower()
    if name.endswith(COMPRESSED):
        name = name[: -len(COMPRESSED)]
    return os.path.splitext(name)[1]


def is_supported(path) -> bool:
    return base_extension(path) in TEXT_EXTENSIONS + TABLE_EXTENSIONS


def is_multi_file(spec) -> bool:
    """Whether `spec` names a directory, a glob or a compressed file: what the
    whole-file readers do not take."""
    spec = os.fspath(spec)
    return (os.path.isdir(spec) or glob.has_magic(spec)
            or spec.lower().endswith(COMPRESSED))


def expand_paths(spec) -> list:
    """The files `spec` names: itself, a directory's supported files (sorted,
    recursively), or a glob's matches (sorted).

    Raises:
        DataError: nothing matches, or a match is not a supported file.
    """
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        files = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(spec) for name in names
            if is_supported(name) and not name.startswith("."))
        if not files:
            raise DataError(
                f"Directory '{spec}' holds no supported file. Expected files "
                f"ending in .txt, .csv, .tsv or .jsonl (each optionally .gz).",
                path=spec)
        return files
    if glob.has_magic(spec):
        files = sorted(p for p in glob.glob(spec, recursive=True) if not os.path.isdir(p))
        if not files:
            raise DataError(
                f"'{spec}' matches no file. Expected a file, a directory or a "
                f"glob that matches files (e.g. 'shards/*.txt.gz').", path=spec)
        unsupported = [p for p in files if not is_supported(p)]
        if unsupported:
            raise DataError(
                f"'{spec}' matches {len(unsupported)} file(s) of no supported "
                f"format, e.g. '{unsupported[0]}'. Expected .txt, .csv, .tsv or "
                f".jsonl files (each optionally .gz); narrow the glob.",
                path=unsupported[0])
        return files
    if not os.path.exists(spec):
        raise DataError(f"File '{spec}' does not exist.", path=spec)
    return [spec]


def _open_binary(path):
    try:
        if os.fspath(path).lower().endswith(COMPRESSED):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as error:
        raise DataError(f"File '{path}' cannot be read: {error.strerror or error}. "
                        f"Expected a readable text file.", path=path) from None


def iter_lines(path, encoding="utf-8", errors="strict"):
    """The lines of `path` (`.gz` decompressed), without their line ends,
    decoded chunk by chunk: `(line_number, line)` pairs.

    Raises:
        DataError: undecodable bytes (with line and byte offset), a damaged
            gzip stream, an empty file.
    """
    decoder_encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in (
        "utf-8", "utf8") else encoding
    number, offset, rest, first = 0, 0, b"", True
    with _open_binary(path) as f:
        while True:
            try:
                chunk = f.read(CHUNK_BYTES)
            except (OSError, EOFError, zlib.error) as error:
                raise DataError(
                    f"File '{path}' is damaged: {error} (after line {number}). "
                    f"Expected a complete gzip file.", path=path, line=number) from None
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            yield from _decode_block(path, block, decoder_encoding if first else encoding,
                                     errors, number, offset)
            number += block.count(b"\n")
            offset += len(block)
            first = False
        if rest:
            yield from _decode_block(path, rest, decoder_encoding if first else encoding,
                                     errors, number, offset, final=True)
            number += 1
            offset += len(rest)
    if offset == 0:
        raise DataError(f"File '{path}' is empty (0 bytes). Expected at least one "
                        f"example.", path=path)


def _decode_block(path, block, encoding, errors, number, offset, final=False):
    try:
        text = block.decode(encoding, errors=errors)
    except UnicodeDecodeError as error:
        line = number + block.count(b"\n", 0, error.start) + 1
        line_start = block.rfind(b"\n", 0, error.start) + 1
        raise DataError(
            f"File '{path}' is not valid {encoding.replace('-sig', '').upper()}: "
            f"byte {block[error.start:error.end][:4].hex(' ')} at byte offset "
            f"{offset + error.start} (line {line}, column {error.start - line_start + 1}) "
            f"cannot be decoded ({error.reason}). Convert the file to UTF-8, or pass "
            f"its real encoding or errors='replace'.",
            path=path, line=line, byte_offset=offset + error.start) from None
    except LookupError as error:
        raise DataError(f"Unknown encoding. Received: encoding={encoding!r}.",
                        path=path) from error
    lines = text.split("\n")
    if not final:
        lines.pop()  # the block ends with "\n"
    for i, line in enumerate(lines, start=number + 1):
        yield i, line.rstrip("\r")


def iter_texts(path, *, split="line", text_column="text", keep_empty=False,
               encoding="utf-8", errors="strict"):
    """The texts of one file as a stream: `.txt` by line (or blank-line
    block), `.jsonl` by its `text_column`, CSV/TSV by the column of that name
    in the header; each optionally `.gz`.

    Yields:
        str.
    """
    extension = base_extension(path)
    if extension in TEXT_EXTENSIONS or extension not in TABLE_EXTENSIONS:
        if split == "line":
            for _, line in iter_lines(path, encoding, errors):
                if keep_empty or line.strip():
                    yield line
        else:
            block = []
            for _, line in iter_lines(path, encoding, errors):
                if line.strip():
                    block.append(line)
                elif block:
                    yield "\n".join(block)
                    block = []
            if block:
                yield "\n".join(block)
    elif extension in (".jsonl", ".json", ".ndjson"):
        for number, line in iter_lines(path, encoding, errors):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where(path, number)}: not valid JSON ({error.msg}, "
                                f"column {error.colno}). Expected one JSON object a line.",
                                path=path, line=number) from None
            if not isinstance(record, dict) or text_column not in record:
                found = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise DataError(f"{where(path, number)}: no text column {text_column!r}. "
                                f"Found: {found}. Pass text_column=... (CLI --text-column).",
                                path=path, line=number)
            value = record[text_column]
            if not isinstance(value, str):
                raise DataError(f"{where(path, number)}: column {text_column!r} holds "
                                f"{type(value).__name__} {value!r:.60}. Expected a string.",
                                path=path, line=number)
            yield value
    else:
        delimiter = "\t" if extension == ".tsv" else ","
        lines = (line + "\n" for _, line in iter_lines(path, encoding, errors))
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"File '{path}' has no header row.", path=path) from None
        if text_column not in header:
            raise DataError(f"File '{path}': no text column {text_column!r}. Columns "
                            f"found: {', '.join(header)}. Pass text_column=... "
                            f"(CLI --text-column).", path=path, line=1)
        column = header.index(text_column)
        for row in reader:
            if not row:
                continue
            if len(row) <= column:
                raise DataError(f"{where(path, reader.line_num)}: {len(row)} field(s), "
                                f"no {text_column!r} (column {column + 1}).",
                                path=path, line=reader.line_num)
            yield row[column]


class Corpus:
    """Texts of one or more files, read as a stream each time it is iterated.

    Args:
        spec: str. A file, a directory or a glob (see `expand_paths`).
        split: str. `.txt` files: `"line"` (default) or `"block"`.
        text_column: str. Column of tables. Defaults to `"text"`.
        keep_empty: bool. Keep empty lines of `.txt` files. Defaults to
            `False`.
        encoding, errors: see `keraslm.data.read_file`.

    Example:

    ```python
    corpus = Corpus("shards/", keep_empty=True)
    tokenizer = keraslm.text.train_tokenizer("wordpiece", corpus, 8000)
    ```
    """

    def __init__(self, spec, *, split="line", text_column="text", keep_empty=False,
                 encoding="utf-8", errors="strict"):
        if split not in ("line", "block"):
            raise DataError(f"Unknown split for '{spec}'. Received: split={split!r}. "
                            f"Expected 'line' or 'block'.", path=spec)
        self.spec = os.fspath(spec)
        self.files = expand_paths(spec)
        self.options = dict(split=split, text_column=text_column, keep_empty=keep_empty,
                            encoding=encoding, errors=errors)
        self._length = None
        self._held_out = None  # (fraction, seed): texts left for validation
        self._record_shard = None  # (num_shards, index): this worker's texts
        self.shard_mode = None  # "files" or "records" once sharded

    def __iter__(self):
        count = kept = 0
        num_shards, shard_index = self._record_shard or (1, 0)
        for index, text in enumerate(self._all()):
            if self._held_out is not None and _is_held_out(index, *self._held_out):
                continue
            count += 1
            if (count - 1) % num_shards != shard_index:
                continue
            kept += 1
            yield text
        self._length = kept

    def _all(self):
        for path in self.files:
            yield from iter_texts(path, **self.options)

    def split(self, validation_fraction, seed=0):
        """`(training_corpus, validation_texts)`: each text goes to validation
        with probability `validation_fraction`, decided by a hash of its
        position and `seed` (the same split every time, in one pass, whatever
        the corpus size); the training corpus streams the rest.

        Raises:
            DataError: a side would be empty.
        """
        if self.shard_mode is not None:
            raise ValueError(f"{self!r} is a shard ({self.shard_mode}); split the whole "
                             f"corpus first, then shard its training part.")
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"`validation_fraction` must be in (0, 1). Received: "
                             f"validation_fraction={validation_fraction}.")
        valid, total = [], 0
        for index, text in enumerate(self._all()):
            total += 1
            if _is_held_out(index, validation_fraction, seed):
                valid.append(text)
        if not valid or len(valid) == total:
            raise DataError(
                f"Cannot split the {total} texts of '{self.spec}' with "
                f"validation_fraction={validation_fraction}: it gives {len(valid)} "
                f"validation texts. Expected at least one on each side; provide "
                f"more data or a validation file.", path=self.spec)
        train = Corpus.__new__(Corpus)
        train.__dict__.update(self.__dict__)
        train._held_out = (validation_fraction, seed)
        train._length = total - len(valid)
        return train, valid

    def shard(self, num_shards, index):
        """This worker's share of the corpus, for `num_shards` workers
        reading disjoint data: whole files (every `num_shards`-th, from
        file `index`) when there are at least as many files as workers, as
        tf.data's FILE auto-sharding does, else (or after `split`) every
        `num_shards`-th text (records). `shard_mode` says which. Texts held
        out by `split` stay out of every shard.

        Raises:
            ValueError: `num_shards`/`index` out of range.

        Example:

        ```python
        mine = Corpus("shards/*.txt.gz").shard(num_workers, worker_index)
        ```
        """
        from keraslm.data.causal_lm import check_shard

        num_shards, index = check_shard((num_shards, index))
        if self._record_shard is not None or self.shard_mode is not None:
            raise ValueError(f"{self!r} is already a shard ({self.shard_mode}); shard "
                             f"the whole corpus once.")
        part = Corpus.__new__(Corpus)
        part.__dict__.update(self.__dict__)
        part._length = None
        # Held-out texts are picked by their position in the whole corpus,
        # which a subset of its files no longer gives: records then.
        if len(self.files) >= num_shards and self._held_out is None:
            part.files = self.files[index::num_shards]
            part.shard_mode = "files"
        else:
            part._record_shard = (num_shards, index)
            part.shard_mode = "records"
        part.shard_of = (num_shards, index)
        return part

    @property
    def known_length(self):
        """The number of texts if a pass has counted them, else None."""
        return self._length

    def __len__(self):
        if self._length is None:
            self._length = sum(1 for _ in self)
        return self._length

    def __repr__(self):
        return f"Corpus({self.spec!r}, {len(self.files)} file(s))"

    @property
    def cache_options(self) -> dict:
        """What, besides the files, decides the texts (for a cache key)."""
        return {**self.options,
                "held_out": list(self._held_out) if self._held_out else None,
                "records": list(self._record_shard) if self._record_shard else None}

    def fingerprint(self) -> list:
        """`[path, size, mtime_ns]` of each file: what a cache checks."""
        out = []
        for path in self.files:
            stat = os.stat(path)
            out.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
        return out

    def head(self, count) -> list:
        """The first `count` texts."""
        out = []
        for text in self:
            out.append(text)
            if len(out) >= count:
                break
        return out


def _is_held_out(index, fraction, seed):
    return zlib.crc32(f"{seed}:{index}".encode()) < fraction * 2**32


def read_whole(path, encoding="utf-8", errors="strict") -> bytes:
    """The bytes of `path`, decompressed when it ends in `.gz` (for the
    whole-file readers)."""
    if not os.fspath(path).lower().endswith(COMPRESSED):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"File '{path}' is damaged: {error}. Expected a complete "
                        f"gzip file.", path=path) from None


__all__ = ["Corpus", "expand_paths", "is_multi_file", "iter_lines", "iter_texts",
           "read_whole"]
