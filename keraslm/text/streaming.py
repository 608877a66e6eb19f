"""Text streams for the tokenizer trainers: checked lazily, counted, reported.

Every trainable keraslm tokenizer learns from an iterable of strings (a list,
a generator, a file read line by line) in one pass, without holding the
corpus: the compiled trainers (Hugging Face `tokenizers`, SentencePiece) keep
only what they count. `TextStream` checks each item as it goes by (a
non-string is an error naming its index), counts texts and characters, and
reports progress through a callback at most every few seconds, so a long
preparation is never minutes of silence.

Example:

```python
from keraslm.text.streaming import TextStream

stream = TextStream(open("corpus.txt", encoding="utf-8"), progress=print)
for text in stream:
    ...
stream.texts, stream.characters      # what went by
```
"""

import time

import tensorflow as tf

from keraslm.text.tokenizer import TokenizerError

REPORT_EVERY_S = 5.0


def _reporter(progress):
    """`progress` as a callable taking one line, or None.

    `True` prints to stdout; a callable is used as is; None or `False`
    reports nothing.
    """
    if progress is True:
        return lambda line: print(line, flush=True)
    if progress in (None, False):
        return None
    if not callable(progress):
        raise TokenizerError(
            f"`progress` must be None, True or a callable taking one string. "
            f"Received: {progress!r}."
        )
    return progress


class TextStream:
    """Iterates over `texts` once, checking, counting and reporting.

    Args:
        texts: an iterable of str (not one str).
        what: str. The name of `texts` in messages. Defaults to `"texts"`.
        total: int, optional. The number of texts, when known (a list's
            length is used by default), for "n/total" in the reports.
        progress: None, True or a callable taking one line of text.
        stage: str. Prefix of the reported lines. Defaults to `"[tokenizer]"`.
        every_s: float. Seconds between reports. Defaults to `5.0`.

    Raises (while iterating):
        TokenizerError: `texts` is a string, holds a non-string, or is empty.
    """

    def __init__(self, texts, what="texts", total=None, progress=None,
                 stage="[tokenizer]", every_s=REPORT_EVERY_S):
        if isinstance(texts, (str, bytes)):
            raise TokenizerError(
                f"`{what}` must be an iterable of strings, not one string. "
                f"Received: {texts[:60]!r}. Wrap it in a list, or read a file "
                f"with `keraslm.data.read_text`."
            )
        try:
            self._iterator = iter(texts)
        except TypeError:
            raise TokenizerError(
                f"`{what}` must be an iterable of strings. Received: "
                f"{type(texts).__name__}."
            ) from None
        if total is None and hasattr(texts, "__len__"):
            total = len(texts)
        self.what = what
        self.total = total
        self.report = _reporter(progress)
        self.stage = stage
        self.every_s = every_s
        self.texts = 0
        self.characters = 0
        self._start = time.perf_counter()
        self._last_report = self._start

    def __iter__(self):
        for text in self._iterator:
            if not isinstance(text, str):
                raise TokenizerError(
                    f"`{self.what}` must contain strings. Received "
                    f"{type(text).__name__} {text!r:.80} at index {self.texts}."
                )
            self.texts += 1
            self.characters += len(text)
            if self.report is not None:
                now = time.perf_counter()
                if now - self._last_report >= self.every_s:
                    self._last_report = now
                    self.report(f"{self.stage} read {self.describe()}")
            yield text
        if self.texts == 0:
            raise TokenizerError(f"`{self.what}` is empty. Expected at least one string.")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def describe(self) -> str:
        """`"1,234/5,000 texts, 4.4M characters (2.1M/s)"`."""
        count = f"{self.texts:,}" + (f"/{self.total:,}" if self.total else "")
        rate = self.characters / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{count} texts, {_si(self.characters)} characters "
                f"({_si(rate)}/s)")

    def finished(self, message):
        """Reports `message` with the counts and the time taken."""
        if self.report is not None:
            self.report(f"{self.stage} {message} from {self.texts:,} texts "
                        f"({_si(self.characters)} characters) in {self.elapsed:.1f} s")

    def batches(self, max_texts=4096, max_characters=1 << 20):
        """The stream as lists of at most `max_texts` texts / about
        `max_characters` characters (for tokenizing in batches)."""
        batch, size = [], 0
        for text in self:
            batch.append(text)
            size += len(text)
            if len(batch) >= max_texts or size >= max_characters:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch


def pretokenized(stream, pretokenize, alphabet=None, inside=None, workers=2):
    """Each text of `stream` as its words joined by single spaces.

    `pretokenize` maps a 1-D string tensor to ragged words (the tokenizer's
    own rule, so the trainer sees exactly the words the encoder will split).
    Words never hold an ASCII space, so a trainer splitting on `" "` gets
    them back. If `alphabet` (a set) is given, every character of every
    word is added to it; if `inside` (a set) is given, every character seen
    after the first of a word (where a `##` continuation is needed: never
    for a CJK character, which is a word of its own).

    Batches are split (and their characters collected) by TensorFlow ops in
    `workers` threads, a few batches ahead of the caller, in order; the
    stream itself is read in the calling thread (its errors are raised
    there).
    """
    import collections
    from concurrent.futures import ThreadPoolExecutor

    want_characters = alphabet is not None or inside is not None

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def split(batch):
        words = pretokenize(batch)
        joined = tf.strings.reduce_join(words, axis=-1, separator=" ")
        if not want_characters:
            return joined, tf.zeros([0], tf.int32), tf.zeros([0], tf.int32)
        chars = tf.strings.unicode_decode(words.flat_values, "UTF-8",
                                          errors="replace")
        every, _ = tf.unique(chars.flat_values)
        later, _ = tf.unique(chars[:, 1:].flat_values)
        return joined, every, later

    def run(batch):
        joined, every, later = split(tf.constant(batch))
        return joined.numpy(), every.numpy(), later.numpy()

    def lines(result):
        joined, every, later = result
        if alphabet is not None:
            alphabet.update(map(chr, every.tolist()))
        if inside is not None:
            inside.update(map(chr, later.tolist()))
        for line in joined:
            yield line.decode("utf-8", errors="replace")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque()
        for batch in stream.batches():
            pending.append(pool.submit(run, batch))
            if len(pending) > 2 * workers:
                yield from lines(pending.popleft().result())
        while pending:
            yield from lines(pending.popleft().result())


def _si(value):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"
