"""`keraslm tokenizer train`: train a tokenizer on files and save it."""

import os
import sys
import time


def train_tokenizer_command(args) -> int:
    """Runs `keraslm tokenizer train` from parsed arguments."""
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    from keraslm.data.readers import read_examples
    from keraslm.text.tokenizer import tokenizer_class

    console = Console(stderr=True)
    cls = tokenizer_class(args.type)
    options = {"vocabulary_size": args.vocab_size}
    if args.type == "sentencepiece":
        options["model_type"] = args.model_type
    if args.lowercase:
        if args.type in ("sentencepiece", "byte"):
            raise ValueError(f"--lowercase is not supported by --type {args.type}.")
        options["lowercase"] = True
    if args.type == "byte":
        options = {}
    texts = []
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=not sys.stderr.isatty()) as progress:
        reading = progress.add_task("reading files", total=len(args.files))
        for path in args.files:
            texts.extend(read_examples(path, text_column=args.text_column,
                                       split=args.split, encoding=args.encoding,
                                       errors=args.errors))
            progress.advance(reading)
        training = progress.add_task(
            f"training {args.type} on {len(texts)} texts", total=1)
        tokenizer = cls.train(texts, **options)
        progress.advance(training)
        saving = progress.add_task(f"saving to {args.output}", total=1)
        tokenizer.save(args.output)
        progress.advance(saving)
    print(f"Trained a {args.type} tokenizer with {tokenizer.vocabulary_size} tokens "
          f"on {len(texts)} texts from {len(args.files)} file(s) in "
          f"{time.perf_counter() - started:.1f} s; saved to "
          f"{os.path.abspath(args.output)}")
    return 0
