"""keraslm tokenizers as a Hugging Face `tokenizer.json` that onnxruntime-genai reads.

onnxruntime-genai tokenizes with its own implementation of `tokenizer.json`.
Two keraslm tokenizers can be written so that it gives keraslm's ids:

- `CharacterTokenizer`: a Unigram model whose pieces are single
  characters (every segmentation is the character sequence), no normalizer
  and no pre-tokenizer; unknown characters are `[UNK]`.
- `SentencePieceTokenizer` of a *unigram* model: T5-style (the model's
  precompiled normalizer, a Metaspace pre-tokenizer and decoder, the pieces
  and scores).

Others (WordPiece, word-level, byte-level, SentencePiece BPE) are not
written: measured, the runtime's BPE mishandles newlines and repeated
spaces. `tokenizer_json` then says why, and the app tokenizes on the host
with keraslm and feeds ids (`generator.append_tokens(ids)`). Whether the
written file really gives keraslm's ids is checked by the exporter on real
text (`check_tokenizer`).

Example:

```python
document, reason = tokenizer_json(tokenizer)   # (dict, None) or (None, "why")
```
"""

import base64

from keraslm.text import special_tokens as st


_METASPACE = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never",
              "split": False}


def _added_tokens(vocabulary, skip=()):
    return [{"id": index, "content": token, "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
            for index, token in enumerate(vocabulary[:st.NUM_SPECIAL_TOKENS])
            if index not in skip]


def _character(tokenizer, eos_as_newline):
    if tokenizer.lowercase or tokenizer.normalization:
        return None, ("a CharacterTokenizer with lowercase/normalization (the runtime "
                      "tokenizer has no such normalizer written here)")
    vocabulary = tokenizer.get_vocabulary()
    # The runtime reads a Unigram tokenizer.json SentencePiece-style: a space is
    # the piece U+2581 (and it prepends one to the text, see check_tokenizer).
    pieces = [["\u2581" if token == " " else token, 0.0] for token in vocabulary]
    skip = ()
    if eos_as_newline:
        # A line-per-document LM writes end-of-text as the line break.
        pieces[st.EOS_ID] = ["\n", 0.0]
        skip = (st.EOS_ID,)
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": _added_tokens(vocabulary, skip),
        "normalizer": None, "pre_tokenizer": _METASPACE, "post_processor": None,
        "decoder": _METASPACE,
        "model": {"type": "Unigram", "unk_id": st.UNK_ID, "vocab": pieces,
                  "byte_fallback": False},
    }, None


def _sentencepiece(tokenizer):
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(tokenizer._proto)
    if model.trainer_spec.model_type != 1:
        return None, ("a SentencePiece BPE model (the runtime's BPE tokenizer "
                      "mishandles newlines and repeated spaces)")
    spec = model.normalizer_spec
    normalizers = []
    if spec.precompiled_charsmap:
        normalizers.append({"type": "Precompiled", "precompiled_charsmap":
                            base64.b64encode(spec.precompiled_charsmap).decode("ascii")})
    if spec.remove_extra_whitespaces:
        normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"},
                            "content": " "})
    metaspace = {"type": "Metaspace", "replacement": "\u2581",
                 "prepend_scheme": "always" if spec.add_dummy_prefix else "never",
                 "split": True}
    vocabulary = tokenizer.get_vocabulary()
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": _added_tokens(vocabulary),
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace, "post_processor": None, "decoder": metaspace,
        "model": {"type": "Unigram", "unk_id": st.UNK_ID,
                  "vocab": [[piece.piece, piece.score] for piece in model.pieces],
                  "byte_fallback": bool(model.trainer_spec.byte_fallback)},
    }, None


def tokenizer_json(tokenizer, eos_as_newline=False):
    """`(document, None)`: the `tokenizer.json` content for `tokenizer`, or
    `(None, reason)` when the runtime's tokenizer cannot express it.

    Args:
        tokenizer: a keraslm tokenizer.
        eos_as_newline: bool. Decode the end-of-text id as a line break (a
            line-per-document LM, `newline_at_eos`). Defaults to `False`.
    """
    kind = getattr(tokenizer, "type_name", None)
    if kind == "character":
        return _character(tokenizer, eos_as_newline)
    if kind == "sentencepiece":
        return _sentencepiece(tokenizer)
    return None, (f"a {type(tokenizer).__name__} (the runtime reads Unigram "
                  f"tokenizer.json exactly; its BPE mishandles newlines and "
                  f"repeated spaces, and no WordPiece/word/byte form was checked)")


def tokenizer_config(tokenizer):
    """The `tokenizer_config.json` beside `tokenizer.json`."""
    vocabulary = tokenizer.get_vocabulary()
    # The runtime picks its Unigram reader from this class (with
    # PreTrainedTokenizerFast it reads the file as BPE and fails).
    return {"tokenizer_class": "T5Tokenizer", "model_max_length": 1 << 30,
            "add_bos_token": False, "add_eos_token": False,
            "bos_token": vocabulary[st.BOS_ID], "eos_token": vocabulary[st.EOS_ID],
            "pad_token": vocabulary[st.PAD_ID], "unk_token": vocabulary[st.UNK_ID],
            "clean_up_tokenization_spaces": False}


def check_tokenizer(tokenizer, model_directory, texts):
    """Compares the runtime's tokenizer (`og.Tokenizer` of the bundle) with
    keraslm's on `texts`: `(matching_texts, total, first_mismatch)`, the
    mismatch `(text, keraslm_ids, runtime_ids)` or None."""
    import onnxruntime_genai as og

    runtime = og.Tokenizer(og.Model(str(model_directory)))
    matching, first = 0, None
    for text in texts:
        want = tokenizer.encode(text)
        got = [int(i) for i in runtime.encode(text)]
        if want == got:
            matching += 1
        elif first is None:
            first = (text, want, got)
    return matching, len(texts), first
