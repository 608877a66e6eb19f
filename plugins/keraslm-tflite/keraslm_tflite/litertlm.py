"""The `.litertlm` bundle: a generation TFLite file, the run's tokenizer in a
form LiteRT-LM reads, and its metadata, for `litert_lm.Engine`.

What goes in (litert-lm-builder's `LitertLmFileBuilder`, measured with
litert-lm-api 0.18.1):

- system metadata (`Authors`, `keraslm_version`, `tokenizer`);
- the LLM metadata (`llm_metadata(...)`): no start token (keraslm's
  language models are trained without one and `keraslm generate` adds none;
  with a `start_token` the runtime puts it before the first prompt), the
  stop token (`[SEP]`, id 3) unless the run's documents are lines and its
  tokenizer goes in as a `tokenizer.json` (then, as in `keraslm generate`,
  the end-of-text id is written as a newline and decoding goes on; the
  runtime requires a stop token, so it is padding, id 0, which is
  suppressed; a SentencePiece model decodes `[SEP]` as nothing, so a
  SentencePiece run stops there), `suppress_tokens` (padding, unknown and mask, which
  `keraslm generate` never produces), `max_num_tokens` (the cache length),
  empty prompt templates (the prompt is the text as given),
  `llm_model_type { generic_model {} }`, `supports_thinking: false` and
  `supports_function_calling: false` (validated by the builder);
- the tokenizer (`runtime_tokenizer(...)`): a SentencePiece run's own
  `.model`; for `character` and `byte` runs an HF `tokenizer.json`
  (WordLevel over one piece per character, or per byte with the byte-level
  alphabet) that gives keraslm's ids exactly; the exporter checks that id
  for id with the runtime's own tokenizer (`Engine.tokenize`). `word` and
  `wordpiece` runs are refused: export `tflite-generation` and feed ids;
- the TFLite file as `PREFILL_DECODE`, with float32 activations preferred
  (the runtime's default for a text decoder is float16).

`engine_generate(path, turns, max_new_tokens)` runs prompts greedily in one
`litert_lm.Engine` session (a list of turns continues one conversation).

Example:

```python
from keraslm_tflite.litertlm import engine_generate

engine_generate("model.litertlm", ["ROMEO:", " and then"], 48)
# ['...48 characters...', '...the second turn...']
```
"""

import contextlib
import io
import json
import os

#: Tokenizers the bundle can carry so that the runtime's ids are keraslm's.
EXACT_TOKENIZERS = ("sentencepiece", "character", "byte")


def check_tokenizer(tokenizer):
    """Raises a ValueError naming the tokenizer if the bundle cannot carry
    it (see `EXACT_TOKENIZERS`)."""
    kind = getattr(tokenizer, "type_name", None)
    if kind not in EXACT_TOKENIZERS:
        raise ValueError(
            f"The litertlm bundle carries the run's tokenizer in a form LiteRT-LM "
            f"reads, exactly for {', '.join(EXACT_TOKENIZERS)} tokenizers. Received: "
            f"tokenizer={kind!r}. Export --format tflite-generation instead and feed "
            f"token ids (keraslm_tflite.generation.TFLiteGenerator).")
    return kind


def _character_json(tokenizer, newline_at_eos):
    from keraslm.text import special_tokens as st

    vocabulary = tokenizer.get_vocabulary()
    if newline_at_eos and "\n" not in vocabulary:
        # The run's documents are lines: its end-of-text id is the newline.
        vocabulary = list(vocabulary)
        vocabulary[st.EOS_ID] = "\n"
    normalizers = []
    if tokenizer.normalization:
        normalizers.append({"type": tokenizer.normalization})
    if tokenizer.lowercase:
        normalizers.append({"type": "Lowercase"})
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": ({"type": "Sequence", "normalizers": normalizers}
                       if normalizers else None),
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"},
                          "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "unk_token": st.UNK,
                  "vocab": {token: index for index, token in enumerate(vocabulary)}},
    }


def _bytes_to_unicode():
    """GPT-2's byte -> printable character map (what HF ByteLevel uses)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    characters = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, characters)))


def _byte_json(tokenizer, newline_at_eos):
    from keraslm.text import special_tokens as st

    vocabulary = {token: index for index, token in enumerate(st.SPECIAL_TOKENS)}
    for byte, character in _bytes_to_unicode().items():
        vocabulary[character] = byte + tokenizer.offset
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
             "use_regex": False},
            {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated",
             "invert": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False,
                    "trim_offsets": False, "use_regex": False},
        "model": {"type": "WordLevel", "unk_token": st.UNK, "vocab": vocabulary},
    }


def runtime_tokenizer(tokenizer, directory, newline_at_eos=False):
    """Writes the tokenizer LiteRT-LM reads into `directory`; returns
    `(kind, path)`, kind `"sentencepiece"` (the run's `.model`) or
    `"hf_tokenizer_json"`.

    With `newline_at_eos` (a run whose documents are lines), the
    `tokenizer.json` of a character run writes the end-of-text id as a
    newline, as `keraslm generate` does (and reads a newline in a prompt as
    that id, which keraslm's encoder reads as unknown: the vocabulary of
    such a run has no newline).

    Example:

    ```python
    runtime_tokenizer(tokenizer, "/tmp/bundle")   # ('hf_tokenizer_json', '/tmp/bundle/tokenizer.json')
    ```
    """
    kind = check_tokenizer(tokenizer)
    if kind == "sentencepiece":
        path = os.path.join(directory, "sentencepiece.model")
        tokenizer.save_assets(directory)
        return kind, path
    content = (_character_json if kind == "character" else _byte_json)(
        tokenizer, newline_at_eos)
    path = os.path.join(directory, "tokenizer.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, ensure_ascii=False)
    return "hf_tokenizer_json", path


def llm_metadata(*, cache_length, stop_ids, suppress_ids):
    """The LLM metadata textproto (see the module docstring).

    Example:

    ```python
    print(llm_metadata(cache_length=256, stop_ids=[3], suppress_ids=[0, 1, 4]))
    ```
    """
    lines = [f"stop_tokens {{ token_ids {{ ids: {int(i)} }} }}" for i in stop_ids]
    if suppress_ids:
        lines.append("suppress_tokens { " + " ".join(f"ids: {int(i)}" for i in suppress_ids)
                     + " }")
    lines += [
        f"max_num_tokens: {int(cache_length)}",
        'prompt_templates { user { prefix: "" suffix: "" } '
        'model { prefix: "" suffix: "" } system { prefix: "" suffix: "" } }',
        "llm_model_type { generic_model {} }",
        "supports_thinking: false",
        "supports_function_calling: false",
    ]
    return "\n".join(lines) + "\n"


def build_bundle(path, *, tflite_path, tokenizer_kind, tokenizer_path, metadata_text,
                 system_metadata):
    """Writes the `.litertlm` file at `path` from its parts."""
    from litert_lm_builder import DType, LitertLmFileBuilder, Metadata, TfLiteModelType

    directory = os.path.dirname(os.path.abspath(tflite_path))
    metadata_path = os.path.join(directory, "llm_metadata.textproto")
    with open(metadata_path, "w") as handle:
        handle.write(metadata_text)
    builder = LitertLmFileBuilder()
    for key, value in system_metadata.items():
        builder.add_system_metadata(Metadata(key=key, value=str(value), dtype=DType.STRING))
    builder.add_llm_metadata(metadata_path)
    if tokenizer_kind == "sentencepiece":
        builder.add_sentencepiece_tokenizer(tokenizer_path)
    else:
        builder.add_hf_tokenizer(tokenizer_path)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the activation type
        builder.add_tflite_model(tflite_path, TfLiteModelType.PREFILL_DECODE,
                                 prefer_activation_type="fp32")
    with open(path, "wb") as handle:
        builder.build(handle, validate_metadata=True)


def _quiet_engine():
    import litert_lm

    litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
    return litert_lm


class Engine:
    """A `litert_lm.Engine` on `path` with a cache directory of its own
    (the runtime needs one that exists), closed with the object.

    Example:

    ```python
    with Engine("model.litertlm") as engine:
        engine.tokenize("ROMEO:")
        engine.generate(["ROMEO:", " and"], 48)   # two turns, one session
    ```
    """

    def __init__(self, path):
        import tempfile

        litert_lm = _quiet_engine()
        self._directory = tempfile.TemporaryDirectory(prefix="keraslm-litertlm-")
        self.engine = litert_lm.Engine(str(path), cache_dir=self._directory.name)

    def tokenize(self, text):
        return list(self.engine.tokenize(text))

    def detokenize(self, ids):
        return self.engine.detokenize([int(i) for i in ids])

    def generate(self, turns, max_new_tokens):
        """Greedy (`top_k=1`) continuations of each turn, all in one session."""
        import litert_lm

        session = self.engine.create_session(
            sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=1.0, seed=0),
            max_output_tokens=int(max_new_tokens))
        texts = []
        try:
            for turn in turns:
                session.run_prefill([turn])
                texts.append("".join(session.run_decode().texts))
        finally:
            session.close()
        return texts

    def close(self):
        self.engine.close()
        self._directory.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()


def engine_generate(path, turns, max_new_tokens):
    """Greedy continuations of `turns` (a str or a list: the turns of one
    conversation) by `litert_lm.Engine`; a list of texts."""
    with Engine(path) as engine:
        return engine.generate([turns] if isinstance(turns, str) else list(turns),
                               max_new_tokens)


def unpack_tflite(path, directory):
    """Writes the `.litertlm` file's TFLite model into `directory` and
    returns its path."""
    from litert_lm_builder import unpack

    unpack(str(path), str(directory))
    found = [name for name in sorted(os.listdir(directory)) if name.endswith(".tflite")]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one TFLite model in the bundle. "
                         f"Received: {found}")
    return os.path.join(directory, found[0])


def load(path, num_threads=None):
    """The registered `runtime` of the `litertlm` exporter: the bundle's
    TFLite file in `keraslm_tflite.generation.TFLiteGenerator`, called like
    the model (`run(batch)` gives logits), so `keraslm export` can score
    the quantized bundle; the text path is `Engine`.

    Example:

    ```python
    run = load("model.litertlm")
    run(np.array([[15, 8, 22]])).shape   # (1, 3, vocabulary)
    ```
    """
    import tempfile

    from keraslm_tflite.generation import TFLiteGenerator

    directory = tempfile.mkdtemp(prefix="keraslm-litertlm-")
    try:
        return TFLiteGenerator(unpack_tflite(path, directory), num_threads=num_threads)
    finally:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
