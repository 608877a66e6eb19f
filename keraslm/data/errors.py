"""Errors and warnings about user data files."""


class DataError(ValueError):
    """A data file (or in-memory dataset) cannot be used as given.

    Attributes:
        path: str or None. The file.
        line: int or None. 1-based line number, where known.
        byte_offset: int or None. 0-based byte offset, where known.
    """

    def __init__(self, message, *, path=None, line=None, byte_offset=None):
        super().__init__(message)
        self.path = path
        self.line = line
        self.byte_offset = byte_offset


class TruncationWarning(UserWarning):
    """Some sequences were longer than the maximum length and were truncated."""


def where(path, line=None):
    """`File 'x.csv', line 3` for messages."""
    text = f"File '{path}'"
    return f"{text}, line {line}" if line is not None else text
