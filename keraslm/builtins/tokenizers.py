"""Built-in tokenizers and the `keraslm tokenizer train` command.

Factories are import strings, so this module stays light: TensorFlow is
imported only when a tokenizer is built.
"""

from keraslm.hookspecs import hookimpl

TOKENIZER_TYPES = {
    "wordpiece": ("keraslm.text.wordpiece:WordPieceTokenizer",
                  "WordPiece trained on your corpus (BERT-style, tensorflow-text FastWordpiece)."),
    "sentencepiece": ("keraslm.text.sentencepiece:SentencePieceTokenizer",
                      "SentencePiece unigram or BPE (sentencepiece package)."),
    "byte": ("keraslm.text.byte:ByteTokenizer",
             "Byte-level: UTF-8 bytes as ids 5-260 after the 5 special tokens, no vocabulary."),
    "character": ("keraslm.text.character:CharacterTokenizer",
                  "Unicode characters with a vocabulary; the default for Chinese."),
    "word": ("keraslm.text.word:WordTokenizer",
             "Word-level with a vocabulary of the most frequent words."),
}


@hookimpl
def register_tokenizers(register):
    for name, (factory, description) in TOKENIZER_TYPES.items():
        register(name, factory, description=description, trainable=True)


def _configure_tokenizer(parser):
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


def _run_tokenizer(args):
    if getattr(args, "tokenizer_action", None) != "train":
        print("usage: keraslm tokenizer train --type wordpiece --vocab-size 8000 "
              "FILES... -o DIR")
        return 2
    from keraslm.text.commands import train_tokenizer_command

    return train_tokenizer_command(args)


@hookimpl
def register_commands(cli):
    cli.add_command("tokenizer", _run_tokenizer,
                    help="Tokenizer tools: `keraslm tokenizer train FILES... -o DIR`.",
                    configure=_configure_tokenizer)
