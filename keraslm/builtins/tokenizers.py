"""Built-in tokenizers."""

from keraslm.hookspecs import hookimpl


@hookimpl
def register_tokenizers(register):
    register(
        "byte",
        "keras_hub.tokenizers:ByteTokenizer",
        description="Byte-level tokenizer: UTF-8 bytes as ids 0-255, no vocabulary.",
    )
