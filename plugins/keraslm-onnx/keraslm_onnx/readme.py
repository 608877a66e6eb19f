"""The README.txt each onnx exporter writes beside its artifact.

A folder artifact (`onnx-genai`) holds `README.txt`; a file artifact
(`model.onnx`) gets `model.onnx.README.txt` beside it (as the tflite
plugin's files do).
"""

import os
import re


def final_path(path):
    """The name `keraslm.export` renames a temporary artifact to
    (`.model.123.partial.onnx` -> `model.onnx`); other names as they are."""
    directory, base = os.path.split(path)
    match = re.fullmatch(r"\.(.*)\.\d+\.partial(\.[^.]*)?", base)
    return os.path.join(directory, match.group(1) + (match.group(2) or "")) if match else path


def readme_path(path):
    """`model.onnx.README.txt` beside the final name of a file artifact."""
    return final_path(path) + ".README.txt"


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.strip() + "\n")


def _cache_lines(sizes):
    layers, heads, head_dim = sizes["num_layers"], sizes["num_heads"], sizes["head_dim"]
    return f"""\
Inputs (names as onnxruntime-genai and Hugging Face optimum use them):
  input_ids                      int64   [batch, new_length]
  attention_mask                 int64   [batch, past_length + new_length]  1 = token, 0 = (left) padding
  position_ids                   int64   [batch, new_length]  each row counted from its first real token
  past_key_values.{{i}}.key/.value float32 [batch, {heads}, past_length, {head_dim}]   i = 0..{layers - 1}
Outputs:
  logits                         float32 [batch, new_length, {sizes['vocabulary_size']}]
  present.{{i}}.key/.value         float32 [batch, {heads}, past_length + new_length, {head_dim}]
Cache: grows by concatenation. First call: past_length = 0 (arrays of shape
[batch, {heads}, 0, {head_dim}]); feed each call's present.* as the next call's
past_key_values.*. Context length (longest sequence): {sizes['context_length']}."""


def write_decoder_readme(path, sizes, banned):
    """README of a plain past/present decoder file."""
    note = (f"Logits of ids {banned} are offset by -1e9 (never picked)."
            if banned else "Logits equal the Keras model's (call_with_cache).")
    _write(readme_path(path), f"""
{os.path.basename(final_path(path))}: a keraslm TransformerLM decoder with past/present caches (ONNX, opset 17).

{_cache_lines(sizes)}
{note}

Run it (greedy, in Python over onnxruntime; ids from keraslm's tokenizer):
  from keraslm_onnx.generation import greedy
  from keraslm.text import load_tokenizer
  tokenizer = load_tokenizer("RUN_DIR/tokenizer")
  new_ids = greedy("{os.path.basename(final_path(path))}", [tokenizer.encode("ROMEO:")], 48, stop_ids=[3], banned_ids=[0, 1, 4])
  print(tokenizer.decode(new_ids[0]))
""")


def write_forward_readme(path, input_name, input_spec, output_shape, opset):
    """README of a forward-pass ONNX file (the `onnx` exporter)."""
    name = os.path.basename(final_path(path))
    _write(readme_path(path), f"""
{name}: a keraslm model's forward pass (ONNX, opset {opset}).

Input:  {input_name}  {input_spec}   (None: any size; token ids, 0 = padding)
Output: {output_shape}
No cache: every call runs the whole sequence. The tokenizer is not in the
graph: tokenize on the host (keraslm.text.load_tokenizer(RUN_DIR/tokenizer)).

Run it:
  import numpy as np, onnxruntime
  session = onnxruntime.InferenceSession("{name}", providers=["CPUExecutionProvider"])
  ids = np.array([[5, 17, 9]], "{input_spec.split()[0]}")
  [outputs] = session.run(None, {{"{input_name}": ids}})
  print(outputs.shape)
""")


def write_genai_readme(path, details, newline_at_eos):
    """README.txt inside an onnx-genai bundle."""
    tokenizer = details["tokenizer"]
    if not tokenizer["written"]:
        tokenizer_text = (f"No tokenizer.json: {tokenizer['reason']}. Tokenize on the host with\n"
                          "keraslm_tokenizer/ and feed ids (generator.append_tokens).")
    elif tokenizer.get("exact"):
        tokenizer_text = (f"tokenizer.json ({tokenizer['type']}) gave keraslm's ids on "
                          f"{tokenizer['matching_texts']}/{tokenizer['checked_texts']} texts "
                          "checked: og.Tokenizer can be used.")
    else:
        mismatch = tokenizer.get("first_mismatch", {})
        tokenizer_text = (
            f"tokenizer.json ({tokenizer['type']}) is NOT exact for encoding: the runtime's\n"
            f"tokenizer gave keraslm's ids on {tokenizer.get('matching_texts', 0)}/"
            f"{tokenizer.get('checked_texts', 0)} texts checked (it prepends a space\n"
            f"piece and collapses repeated spaces, as SentencePiece does). First difference:\n"
            f"  text {mismatch.get('text', '')[:40]!r}\n  keraslm {mismatch.get('keraslm')}\n"
            f"  runtime {mismatch.get('runtime')}\n"
            "Encode with keraslm_tokenizer/ and feed ids (generator.append_tokens); the\n"
            "runtime's tokenizer still decodes the ids (og.Tokenizer.decode).")
    eos = ("Generation goes on through end-of-text (id 3, a line break), as keraslm\n"
           "generate does for a line-per-document LM: eos_token_id is 0 (padding), never\n"
           "generated; stop on max_length." if newline_at_eos else
           "Generation stops at end-of-text (eos_token_id 3).")
    quantized = ""
    if details.get("quantize") == "dynamic_int8":
        agreement = details["greedy_agreement"]
        quantized = (f"decoder.onnx is dynamic int8 (onnxruntime quantize_dynamic): "
                     f"{details['int8_size_bytes'] / 1e6:.2f} MB vs {details['float32_size_bytes'] / 1e6:.2f} MB "
                     f"float32; greedy ids equal to float32 for the first "
                     f"{agreement['leading_equal_ids']} of {agreement['new_tokens']} new ids "
                     f"of each checked prompt.\n")
    _write(os.path.join(path, "README.txt"), f"""
An onnxruntime-genai bundle of a keraslm TransformerLM (keraslm export --format onnx-genai).

decoder.onnx: past/present decoder (ONNX opset {details['opset']}), model type "decoder".
{_cache_lines(details)}
Logits of ids {details['banned_in_logits']} (padding, [MASK]) are offset by -1e9, so
the runtime's greedy search never picks them, as keraslm generate does not.
{quantized}{eos}
Token ids: 0 [PAD], 1 [UNK], 2 [CLS] (bos), 3 [SEP] (end of text), 4 [MASK].
The runtime never adds bos; keraslm generate does not either.
{tokenizer_text}

Run it (onnxruntime-genai 0.18, ids from keraslm's tokenizer):
  import onnxruntime_genai as og
  from keraslm.text import load_tokenizer
  model, tokenizer = og.Model("."), load_tokenizer("keraslm_tokenizer")
  params = og.GeneratorParams(model); params.set_search_options(max_length=64)
  generator = og.Generator(model, params); generator.append_tokens(tokenizer.encode("ROMEO:"))
  while not generator.is_done(): generator.generate_next_token()
  print(tokenizer.decode(generator.get_sequence(0)))
""")
