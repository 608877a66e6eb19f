"""`keraslm tokenizer train FILES... -o DIR`: train a tokenizer on files and save it.

Example:

```bash
keraslm tokenizer train train.txt --type sentencepiece --vocab-size 4000 -o tok/
```
"""

import os
import sys
import time


def configure(parser):
    actions = parser.add_subparsers(dest="tokenizer_action", metavar="ACTION")
    train = actions.add_parser(
        "train", help="Train a tokenizer on text files and save it to a directory.",
        description="Train a tokenizer on text files and save it to a directory "
                    "(tokenizer.json + vocabulary), loadable with "
                    "keraslm.text.load_tokenizer(DIR).")
    train.add_argument("files", nargs="+", metavar="FILES",
                       help="Text files (.txt: one example per line or block; "
                            ".csv/.tsv/.jsonl: the --text-column).")
    train.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="Directory to write the tokenizer to.")
    train.add_argument("--type", default="wordpiece",
                       help="Tokenizer type (see `keraslm plugins --all`). Default: wordpiece.")
    train.add_argument("--vocab-size", type=int, default=8000,
                       help="Target vocabulary size, special tokens included. Default: 8000.")
    train.add_argument("--model-type", default="unigram", choices=["unigram", "bpe"],
                       help="SentencePiece model type. Default: unigram.")
    train.add_argument("--lowercase", action="store_true", help="Case-fold text first.")
    train.add_argument("--text-column", default="text",
                       help="Column holding the text in CSV/TSV/JSONL files. Default: text.")
    train.add_argument("--split", default="line", choices=["line", "block"],
                       help="For .txt files: one example per line or per blank-line block.")
    train.add_argument("--encoding", default="utf-8", help="File encoding. Default: utf-8.")
    train.add_argument("--errors", default="strict", choices=["strict", "replace"],
                       help="What to do with bytes that do not decode. Default: strict.")


def run(args) -> int:
    """Runs `keraslm tokenizer train` from parsed arguments."""
    if getattr(args, "tokenizer_action", None) != "train":
        print("usage: keraslm tokenizer train --type wordpiece --vocab-size 8000 "
              "FILES... -o DIR")
        return 2

    from rich.console import Console
    from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn)

    from keraslm.data.readers import read_examples
    from keraslm.text.tokenizer import train_tokenizer

    console = Console(stderr=True)
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
        tokenizer = train_tokenizer(args.type, texts, progress=console.print, **options)
        progress.advance(training)
        saving = progress.add_task(f"saving to {args.output}", total=1)
        tokenizer.save(args.output)
        progress.advance(saving)
    print(f"Trained a {args.type} tokenizer with {tokenizer.vocabulary_size} tokens "
          f"on {len(texts)} texts from {len(args.files)} file(s) in "
          f"{time.perf_counter() - started:.1f} s; saved to "
          f"{os.path.abspath(args.output)}")
    return 0
