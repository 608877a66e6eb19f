"""Built-in tokenizers.

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
