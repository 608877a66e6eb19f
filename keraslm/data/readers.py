"""Readers for user files, with explicit formats and clear errors.

Every reader decodes the whole file first and reports problems with the file
name and the line (or byte offset): empty files, bytes that are not valid in
the encoding, missing columns, malformed lines. Nothing is dropped silently.

Example:

```python
from keraslm import data

lines = data.read_text("../shared/data/shakespeare/train.txt")            # per line
reviews = data.read_table("../shared/data/reviews/train.csv")             # texts, labels
brown = data.read_conll("../shared/data/brown/train.conll")               # tokens, tags
pairs = data.read_pairs("../shared/data/bible_en_es/train.tsv")           # sources, targets
```
"""

import csv
import dataclasses
import io
import json
import os

from keraslm.data.errors import DataError, where
from keraslm.data.sources import base_extension, read_whole
from keraslm.registry import suggest

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
                 ".ndjson": "jsonl"}


@dataclasses.dataclass
class TextExamples:
    """Texts with optional labels, as read from a table.

    Attributes:
        texts: list of str.
        labels: list of str, or None when the file has no labels.
        lines: list of int. The line where each example starts (for messages).
        path: str. The file.
    """

    texts: list
    labels: list | None
    lines: list
    path: str

    def __len__(self):
        return len(self.texts)


@dataclasses.dataclass
class TaggedSentences:
    """Sentences of tokens with one tag per token (CoNLL).

    Attributes:
        tokens: list of list of str.
        tags: list of list of str (same shape as `tokens`).
        lines: list of int. The line of each sentence's first token.
        path: str.
    """

    tokens: list
    tags: list
    lines: list
    path: str

    def __len__(self):
        return len(self.tokens)


@dataclasses.dataclass
class TextPairs:
    """Source/target pairs for seq2seq.

    Attributes:
        sources: list of str.
        targets: list of str.
        lines: list of int.
        path: str.
    """

    sources: list
    targets: list
    lines: list
    path: str

    def __len__(self):
        return len(self.sources)


def read_file(path, encoding="utf-8", errors="strict") -> str:
    """Reads a whole text file, with a precise error for undecodable bytes.

    A file ending in `.gz` is decompressed first, so every reader takes
    gzip-compressed files (`train.csv.gz`, `train.conll.gz`).

    Args:
        path: str. The file.
        encoding: str. Defaults to `"utf-8"` (a leading BOM is removed).
        errors: str. `"strict"` (default) raises on undecodable bytes;
            `"replace"` substitutes U+FFFD.

    Raises:
        DataError: the file is missing, empty, or not valid in `encoding`.
    """
    path = os.fspath(path)
    if os.path.islink(path) and not os.path.exists(path):
        raise DataError(f"'{path}' is a symbolic link to '{os.readlink(path)}', which "
                        f"cannot be opened (it does not exist, or the links loop). "
                        f"Expected a text file.", path=path)
    if not os.path.exists(path):
        raise DataError(f"File '{path}' does not exist.", path=path)
    if os.path.isdir(path):
        raise DataError(f"'{path}' is a directory. Expected a text file.", path=path)
    try:
        raw = read_whole(path)
    except OSError as error:
        raise DataError(f"File '{path}' cannot be read: {error.strerror or error}. "
                        f"Expected a readable text file.", path=path) from None
    if not raw:
        raise DataError(
            f"File '{path}' is empty (0 bytes). Expected at least one example.",
            path=path,
        )
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding, errors=errors)
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        bad = raw[error.start:error.end]
        raise DataError(
            f"File '{path}' is not valid {error.encoding.replace('-sig', '').upper()}: "
            f"byte {bad[:4].hex(' ')} at byte offset {error.start} (line {line}, "
            f"column {error.start - line_start + 1}) cannot be decoded "
            f"({error.reason}). Expected {encoding.replace('-sig', '')} text. "
            f"Convert the file to UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8 IN > OUT`), "
            f"or in Python pass the file's real encoding (encoding='latin-1') or "
            f"errors='replace' (substitutes U+FFFD) to the keraslm.data reader.",
            path=path, line=line, byte_offset=error.start,
        ) from None
    except LookupError as error:
        raise DataError(f"Unknown encoding. Received: encoding={encoding!r}.",
                        path=path) from error
    if not text.strip():
        raise DataError(
            f"File '{path}' contains only whitespace ({len(raw)} bytes). "
            f"Expected at least one example.", path=path,
        )
    return text


def read_text(path, *, split="line", encoding="utf-8", errors="strict",
              keep_empty=False, with_lines=False):
    """Reads a plain-text file into examples.

    Args:
        path: str. A `.txt` file.
        split: str. `"line"`: one example per line (default); `"block"`:
            one example per block of lines separated by blank lines (the
            block keeps its newlines).
        encoding: str. Defaults to `"utf-8"`.
        errors: str. `"strict"` or `"replace"`. Defaults to `"strict"`.
        keep_empty: bool. Keep empty lines (only with `split="line"`).
            Defaults to `False`.
        with_lines: bool. Also return the 1-based line of each example.

    Returns:
        list of str (or `(texts, lines)` with `with_lines=True`).

    Example:

    ```python
    lines = read_text("../shared/data/tang_poems/test.txt")        # one poem a line
    scenes = read_text("../shared/data/shakespeare/test.txt", split="block")
    ```
    """
    if split not in ("line", "block"):
        raise DataError(
            f"Unknown split for '{path}'. Received: split={split!r}. Expected "
            f"'line' (one example per line) or 'block' (blank-line separated).",
            path=path,
        )
    text = read_file(path, encoding, errors)
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    texts, numbers = [], []
    if split == "line":
        for number, line in enumerate(raw_lines, start=1):
            line = line.rstrip("\r")
            if keep_empty or line.strip():
                texts.append(line)
                numbers.append(number)
    else:
        block, start = [], None
        for number, line in enumerate(raw_lines + [""], start=1):
            line = line.rstrip("\r")
            if line.strip():
                if not block:
                    start = number
                block.append(line)
            elif block:
                texts.append("\n".join(block))
                numbers.append(start)
                block = []
    return (texts, numbers) if with_lines else texts


def _table_format(path, format):
    if format is None:
        extension = base_extension(path)
        format = TABLE_FORMATS.get(extension)
        if format is None:
            raise DataError(
                f"Cannot tell the format of '{path}' from its extension "
                f"'{extension}'. Expected .csv, .tsv or .jsonl, or pass "
                f"format='csv'|'tsv'|'jsonl'.", path=path,
            )
    if format not in ("csv", "tsv", "jsonl"):
        raise DataError(
            f"Unknown table format. Received: format={format!r}. Expected "
            f"'csv', 'tsv' or 'jsonl'.", path=path,
        )
    return format


def _missing_column(path, role, name, available, line=None):
    hint = suggest(str(name), [str(a) for a in available])
    return DataError(
        f"{where(path, line)}: no {role} column {name!r}. Columns found: "
        f"{', '.join(map(str, available)) or '(none)'}."
        + (f" Did you mean {hint!r}?" if hint else "")
        + f" Pass {role}_column=... (CLI --{role}-column).",
        path=path, line=line,
    )


def read_table(path, *, text_column="text", label_column="label", format=None,
               encoding="utf-8", errors="strict") -> TextExamples:
    """Reads texts (and labels) from a CSV, TSV or JSONL file.

    CSV/TSV files need a header row; JSONL files hold one JSON object per
    line. Column names are configurable.

    Args:
        path: str. The file.
        text_column: str. Defaults to `"text"`.
        label_column: str or None. Defaults to `"label"`; None reads texts only.
        format: str or None. `"csv"`, `"tsv"` or `"jsonl"`; None guesses
            from the extension.
        encoding, errors: see `read_file`.

    Returns:
        `TextExamples(texts, labels, lines, path)`.

    Raises:
        DataError: a missing column (with the columns found and the closest
            name), a row with a missing value, an empty text or label.

    Example:

    ```python
    train = read_table("../shared/data/reviews/train.csv")
    len(train), train.labels[:3]          # 4000, ['other', 'great', ...]
    ```
    """
    format = _table_format(path, format)
    text = read_file(path, encoding, errors)
    texts, labels, lines = [], [], []
    if format == "jsonl":
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    f"{where(path, number)}: not valid JSON ({error.msg} at "
                    f"column {error.colno}). Expected one JSON object per line. "
                    f"Received: {line[:80]!r}.", path=path, line=number,
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{where(path, number)}: expected a JSON object, received "
                    f"{type(record).__name__} {line[:80]!r}.", path=path, line=number,
                )
            for role, column in (("text", text_column), ("label", label_column)):
                if column is not None and column not in record:
                    raise _missing_column(path, role, column, list(record), number)
            texts.append(_check_value(record[text_column], path, number, "text", text_column))
            if label_column is not None:
                labels.append(_check_value(record[label_column], path, number,
                                           "label", label_column))
            lines.append(number)
    else:
        reader = csv.reader(io.StringIO(text, newline=""),
                            delimiter="," if format == "csv" else "\t")
        try:
            header = next(reader)
        except csv.Error as error:
            raise DataError(f"{where(path, 1)}: {error}.", path=path, line=1) from None
        header = [h.strip() for h in header]
        if text_column not in header:
            raise _missing_column(path, "text", text_column, header, 1)
        if label_column is not None and label_column not in header:
            raise _missing_column(path, "label", label_column, header, 1)
        text_index = header.index(text_column)
        label_index = header.index(label_column) if label_column is not None else None
        start = 2
        try:
            for row in reader:
                number = start
                start = reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    spans = any("\n" in f for f in row)
                    raise DataError(
                        f"{where(path, number)}: row has {len(row)} field(s), "
                        f"expected {len(header)} ({', '.join(header)}). "
                        f"Received: {[f[:60] for f in row[:4]]!r}. "
                        + (f"A quoted field that starts on this line runs on to line "
                           f"{max(reader.line_num, number + 1)}: is its closing quote "
                           f"missing?"
                           if spans else "Quote fields that contain the delimiter."),
                        path=path, line=number,
                    )
                texts.append(_check_value(row[text_index], path, number, "text", text_column))
                if label_index is not None:
                    labels.append(_check_value(row[label_index], path, number,
                                               "label", label_column))
                lines.append(number)
        except csv.Error as error:
            raise DataError(f"{where(path, reader.line_num)}: {error}.", path=path,
                            line=reader.line_num) from None
    if not texts:
        raise DataError(f"File '{path}' has a header but no rows. Expected at "
                        f"least one example.", path=path)
    return TextExamples(texts, labels if label_column is not None else None, lines,
                        os.fspath(path))


def _check_value(value, path, line, role, column):
    """A row's text (a string) or label (a string, integer or boolean)."""
    if value is None or (isinstance(value, str) and not value.strip()
                         and role == "label"):
        raise DataError(
            f"{where(path, line)}: the {role} column {column!r} is empty. "
            f"Expected a value in every row.", path=path, line=line,
        )
    if role == "label" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) and role == "label":
        return "true" if value else "false"  # as JSON spells it
    allowed = (str,) if role == "text" else (str, int)
    if not isinstance(value, allowed) or isinstance(value, bool):
        expected = "a string" if role == "text" else "a string or an integer"
        raise DataError(
            f"{where(path, line)}: the {role} column {column!r} holds "
            f"{type(value).__name__} {json.dumps(value)[:80]}. Expected {expected}.",
            path=path, line=line,
        )
    return value if isinstance(value, str) else str(value)


def read_conll(path, *, separator="\t", token_column=None, tag_column=None,
               encoding="utf-8", errors="strict") -> TaggedSentences:
    """Reads a CoNLL-style file: `token<TAB>tag` per line, blank line between sentences.

    Lines starting with `-DOCSTART-` are skipped. Without `token_column`
    and `tag_column` every line must have exactly two columns; a file with
    more (CoNLL-2003's `word POS chunk NER`) needs them named, so a wrong
    column is never read as the tags. Every line must have as many columns
    as the first.

    Args:
        path: str. The file.
        separator: str. Column separator. Defaults to a tab.
        token_column: int or None. Defaults to `0` (the first column).
        tag_column: int or None. Defaults to `-1` (the last column).
        encoding, errors: see `read_file`.

    Raises:
        DataError: a line without the separator, with another number of
            columns than expected, or a missing column (file and line).

    Example:

    ```python
    brown = read_conll("../shared/data/brown/test.conll")
    brown.tokens[0][:3], brown.tags[0][:3]
    ```
    """
    text = read_file(path, encoding, errors)
    named = token_column is not None or tag_column is not None
    token_column = 0 if token_column is None else token_column
    tag_column = -1 if tag_column is None else tag_column
    shown = "tab" if separator == "\t" else repr(separator)
    columns = None  # of the first line
    tokens, tags, lines = [], [], []
    sentence_tokens, sentence_tags, start = [], [], None
    raw_lines = text.split("\n")
    for number, line in enumerate(raw_lines + [""], start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if sentence_tokens:
                tokens.append(sentence_tokens)
                tags.append(sentence_tags)
                lines.append(start)
                sentence_tokens, sentence_tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        fields = line.split(separator)
        if len(fields) < 2:
            name = "<TAB>" if separator == "\t" else separator
            raise DataError(
                f"{where(path, number)}: expected 'token{name}tag' (columns "
                f"separated by a {shown}), received {line[:80]!r}, which has "
                f"no {shown}.", path=path, line=number,
            )
        if columns is None:
            columns = (number, len(fields))
            if len(fields) != 2 and not named:
                raise DataError(
                    f"{where(path, number)}: has {len(fields)} {shown}-separated "
                    f"columns, expected 2 (token, tag). Received: {line[:80]!r}. "
                    f"Name the columns to use: token_column=..., tag_column=... "
                    f"(0-based, -1 = last; CLI --token-column N --tag-column N).", path=path, line=number,
                )
        elif len(fields) != columns[1]:
            raise DataError(
                f"{where(path, number)}: has {len(fields)} {shown}-separated columns, "
                f"but line {columns[0]} has {columns[1]}. Received: {line[:80]!r}. "
                f"Expected the same columns on every line.", path=path, line=number,
            )
        try:
            token, tag = fields[token_column], fields[tag_column]
        except IndexError:
            raise DataError(
                f"{where(path, number)}: has {len(fields)} columns, but "
                f"token_column={token_column} and tag_column={tag_column}. "
                f"Received: {line[:80]!r}.", path=path, line=number,
            ) from None
        if not token or not tag:
            raise DataError(
                f"{where(path, number)}: empty token or tag. Received: "
                f"{line[:80]!r}.", path=path, line=number,
            )
        if not sentence_tokens:
            start = number
        sentence_tokens.append(token)
        sentence_tags.append(tag)
    if not tokens:
        raise DataError(f"File '{path}' has no sentences.", path=path)
    return TaggedSentences(tokens, tags, lines, os.fspath(path))


def read_pairs(path, *, separator="\t", source_column=None, target_column=None,
               encoding="utf-8", errors="strict") -> TextPairs:
    """Reads sentence pairs, one `source<TAB>target` per line (no header).

    Without `source_column` and `target_column` every line must have
    exactly two columns (a third would otherwise be dropped, or a stray tab
    inside a sentence move its second half into the target); with them,
    every line must have as many columns as the first.

    Args:
        path: str. The file.
        separator: str. Defaults to a tab.
        source_column: int or None. Defaults to `0`.
        target_column: int or None. Defaults to `1`.
        encoding, errors: see `read_file`.

    Raises:
        DataError: a line with another number of columns than expected, or
            an empty source or target (file and line).

    Example:

    ```python
    pairs = read_pairs("../shared/data/bible_en_es/valid.tsv")
    pairs.sources[0], pairs.targets[0]
    ```
    """
    text = read_file(path, encoding, errors)
    named = source_column is not None or target_column is not None
    source_column = 0 if source_column is None else source_column
    target_column = 1 if target_column is None else target_column
    shown = "tab" if separator == "\t" else repr(separator)
    needed = max(source_column, target_column) + 1
    columns = None  # of the first line
    sources, targets, lines = [], [], []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(separator)
        if len(fields) < needed or (not named and len(fields) != 2):
            raise DataError(
                f"{where(path, number)}: expected {'at least ' if named else ''}"
                f"{needed if named else 2} {shown}-separated columns (source, "
                f"target), received {len(fields)}: {line[:80]!r}."
                + ("" if named or len(fields) < 2 else
                   " Name the columns to use: source_column=..., target_column=... "
                   "(0-based; CLI --source-column N --target-column N)."),
                path=path, line=number,
            )
        if columns is None:
            columns = (number, len(fields))
        elif len(fields) != columns[1]:
            raise DataError(
                f"{where(path, number)}: has {len(fields)} {shown}-separated columns, "
                f"but line {columns[0]} has {columns[1]}. Received: {line[:80]!r}. "
                f"Expected the same columns on every line.", path=path, line=number,
            )
        source, target = fields[source_column].strip(), fields[target_column].strip()
        if not source or not target:
            raise DataError(
                f"{where(path, number)}: empty {'source' if not source else 'target'}. "
                f"Received: {line[:80]!r}.", path=path, line=number,
            )
        sources.append(source)
        targets.append(target)
        lines.append(number)
    return TextPairs(sources, targets, lines, os.fspath(path))


def read_examples(path, *, text_column="text", label_column=None, split="line",
                  encoding="utf-8", errors="strict"):
    """Texts from any supported file: `.txt` by line/block, tables by column."""
    if base_extension(path) in TABLE_FORMATS:
        return read_table(path, text_column=text_column, label_column=label_column,
                          encoding=encoding, errors=errors).texts
    return read_text(path, split=split, encoding=encoding, errors=errors)
