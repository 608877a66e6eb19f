"""Generation export of a Shakespeare Transformer LM: the onnx-genai bundle and
the past/present ONNX decoder give keraslm generate's greedy ids in
onnxruntime-genai and in the onnxruntime loop; quantized bundles report their
cost; bad requests are refused with one line before anything converts."""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

import keraslm
from keraslm import cli
from keraslm.text import special_tokens as st

DATA = pathlib.Path(os.environ.get(
    "KERASLM_TEST_DATA", pathlib.Path(__file__).resolve().parents[4] / "shared" / "data"))
PROMPTS = ["ROMEO:", "To be, or not to be, that is", "KING HENRY. Now, lords,"]
NEW_TOKENS = 48


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A character Transformer LM trained for a few steps on Shakespeare,
    exported once as a float32 bundle through `keraslm export`."""
    root = tmp_path_factory.mktemp("onnx_generation")
    with open(DATA / "shakespeare" / "train.txt", encoding="utf-8") as handle:
        lines = handle.readlines()[20000:23000]
    (root / "train.txt").write_text("".join(lines), encoding="utf-8")
    (root / "run.toml").write_text(
        f'task = "lm"\ntrain = "{root / "train.txt"}"\ntokenizer = "character"\n'
        'steps = 108\nsequence_length = 64\nbatch_size = 32\nlearning_rate = 0.03\n'
        '[model_options]\nnum_layers = 2\nhidden_dim = 32\nnum_heads = 2\n'
        'intermediate_dim = 64\nmax_sequence_length = 128\n')
    run = str(root / "run")
    assert cli.main(["train", "--config", str(root / "run.toml"), "-o", run]) == 0
    bundle = str(root / "model.genai")
    assert cli.main(["export", run, "--format", "onnx-genai", "-o", bundle]) == 0
    return run, bundle


@pytest.fixture(scope="module")
def loaded(lm_run):
    from keraslm.training import load_run

    _, task, model, tokenizer = load_run(lm_run[0])
    return task, model, tokenizer


def keras_greedy(loaded, prompts):
    from keraslm import generation

    task, model, tokenizer = loaded
    assert task.generate_options() == {"newline_at_eos": True}  # no stop at end-of-text
    return generation.generate_ids(
        model, [tokenizer.encode(p) for p in prompts], NEW_TOKENS, sampler="greedy",
        banned_ids=(tokenizer.pad_id, tokenizer.unk_id, tokenizer.mask_id))


def test_greedy_ids_identical_in_genai_onnxruntime_and_keras(lm_run, loaded):
    from keraslm_onnx import genai, generation

    _, bundle = lm_run
    _, _, tokenizer = loaded
    ids = [tokenizer.encode(p) for p in PROMPTS]
    expected = keras_greedy(loaded, PROMPTS)
    assert all(len(row) == NEW_TOKENS for row in expected)
    # Trained briefly: the continuations differ by prompt and mix several ids.
    assert len({tuple(row) for row in expected}) >= 2
    assert len({token for row in expected for token in row}) >= 3
    # The batch (left-padded, three lengths) in the onnxruntime loop...
    assert generation.greedy(os.path.join(bundle, "decoder.onnx"), ids, NEW_TOKENS,
                             banned_ids=(0, 1, 4)) == expected
    # ... and each prompt in onnxruntime-genai's own generator.
    assert genai.greedy(bundle, ids, NEW_TOKENS) == expected
    # keraslm generate's text is those ids, end-of-text written as a line break.
    text = keraslm.generation.generate(loaded[1], tokenizer, PROMPTS[1], NEW_TOKENS,
                                       sampler="greedy", newline_at_eos=True)
    lines = [[]]
    for token in expected[1]:
        lines.append([]) if token == st.EOS_ID else lines[-1].append(token)
    assert text == PROMPTS[1] + "\n".join(tokenizer.decode(line) for line in lines)


def test_bundle_holds_config_tokenizer_and_readme(lm_run, loaded):
    import onnxruntime_genai as og

    run, bundle = lm_run
    _, model, tokenizer = loaded
    files = set(os.listdir(bundle))
    assert {"decoder.onnx", "genai_config.json", "tokenizer.json", "tokenizer_config.json",
            "keraslm_tokenizer", "README.txt"} <= files
    config = json.loads(pathlib.Path(bundle, "genai_config.json").read_text())
    decoder = config["model"]["decoder"]
    assert config["model"]["type"] == "decoder"
    assert config["model"]["vocab_size"] == tokenizer.vocabulary_size
    assert config["model"]["context_length"] == 128
    assert config["model"]["eos_token_id"] == st.PAD_ID  # newline_at_eos: no stop
    assert (decoder["num_hidden_layers"], decoder["num_attention_heads"],
            decoder["head_size"]) == (2, 2, 16)
    assert decoder["inputs"]["past_key_names"] == "past_key_values.%d.key"
    assert config["search"]["past_present_share_buffer"] is False
    report = json.loads(pathlib.Path(bundle + ".report.json").read_text())
    assert report["max_abs_diff"] < 1e-4
    assert report["details"]["runtime_greedy_equal"]["prompts"] == 3
    # The runtime's tokenizer prepends a space piece (SentencePiece style): the
    # character tokenizer is not exact for encoding, and the bundle says so.
    note = report["details"]["tokenizer"]
    assert note["written"] and note["exact"] is False
    readme = pathlib.Path(bundle, "README.txt").read_text()
    assert "NOT exact" in readme and "append_tokens" in readme
    assert "past_key_values.{i}.key" in readme
    runtime = og.Tokenizer(og.Model(bundle))
    line = "Is this a dagger which I see before me,"
    assert runtime.decode(tokenizer.encode(line)) == line  # decoding is exact
    assert [int(i) for i in runtime.encode(line)] != tokenizer.encode(line)


def test_onnx_decoder_file_matches_keras(lm_run, loaded, tmp_path):
    from keraslm_onnx import generation

    _, model, tokenizer = loaded
    path = str(tmp_path / "decoder.onnx")
    rows = [np.array(tokenizer.encode(p), "int32")[None] for p in PROMPTS]
    result = keraslm.export(model, path, format="onnx-decoder", inputs=rows)
    assert result.max_abs_diff < 1e-4
    assert result.details["inputs"][:3] == ["input_ids", "attention_mask", "position_ids"]
    assert os.path.exists(tmp_path / "decoder.onnx.README.txt")
    ids = [tokenizer.encode(p) for p in PROMPTS]
    assert generation.greedy(path, ids, NEW_TOKENS, banned_ids=(0, 1, 4)) == \
        keras_greedy(loaded, PROMPTS)


def test_quantized_bundle_reports_size_metric_and_agreement(lm_run, tmp_path, capsys):
    run, bundle = lm_run
    out = str(tmp_path / "int8.genai")
    assert cli.main(["export", run, "--format", "onnx-genai", "--quantize", "dynamic_int8",
                     "-o", out, "--eval-examples", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    details = report["details"]
    # Sizes as written (this 30k-parameter model is too small for int8 to pay;
    # benchmarks/export_latency.py measures a Shakespeare-sized one).
    assert details["int8_size_bytes"] == os.path.getsize(os.path.join(out, "decoder.onnx"))
    assert details["float32_size_bytes"] > 0
    assert not os.path.exists(os.path.join(out, "decoder.float32.onnx"))
    assert abs(details["metrics"]["bits_per_character"]["delta"]) < 0.05
    assert details["greedy_agreement"]["prompts"] == 3
    assert 0 <= details["argmax_agreement"] <= 1
    assert "dynamic int8" in pathlib.Path(out, "README.txt").read_text()
    from keraslm_onnx import genai

    assert len(genai.greedy(out, [40, 11, 7], 8)) == 8  # it generates


@pytest.mark.parametrize("case", ["classify_run", "output_exists", "quantize", "lstm"])
def test_bad_requests_are_one_line_errors_before_converting(lm_run, tmp_path, capsys,
                                                            monkeypatch, case):
    import keraslm_onnx.decoder

    run, bundle = lm_run

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted a refused request")

    monkeypatch.setattr(keraslm_onnx.decoder, "convert_decoder", no_conversion)
    if case == "lstm":
        model = keraslm.models.lstm_lm(vocabulary_size=50, preset="tiny")
        with pytest.raises(keraslm.exporting.ExportError,
                           match="Received: LSTMLM. Accepted: keraslm.models.TransformerLM"):
            keraslm.export(model, str(tmp_path / "x.genai"), format="onnx-genai")
        return
    args = ["export", run, "--format", "onnx-genai", "-o", str(tmp_path / "new.genai")]
    if case == "classify_run":
        fake = tmp_path / "classify_run"
        shutil.copytree(run, fake, ignore=shutil.ignore_patterns("checkpoints", "*.keras"))
        config_path = next(p for p in fake.iterdir() if p.name.startswith("config"))
        config = config_path.read_text().replace('"lm"', '"classify"', 1)
        config_path.write_text(config)
        args[1] = str(fake)
        message = "exports lm runs. Received: a classify run"
    elif case == "output_exists":
        args[-1] = bundle
        message = "exists. Pass --overwrite"
    else:
        args += ["--quantize", "int4"]
        message = "--quantize must be one of none, dynamic_int8"
    assert cli.main(args) != 0
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1, error


def test_sentencepiece_unigram_tokenizer_is_exact_in_the_runtime(lm_run, tmp_path):
    """A SentencePiece unigram model written T5-style: og.Tokenizer gives
    keraslm's ids on real lines (and on repeated spaces, tabs, NFKC)."""
    from keraslm_onnx import tokenizer_json

    _, bundle = lm_run
    with open(DATA / "shakespeare" / "train.txt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle.readlines()[:6000] if line.strip()]
    with open(DATA / "shakespeare" / "valid.txt", encoding="utf-8") as handle:
        valid = [line.strip() for line in handle.readlines()[:300] if line.strip()]
    tokenizer = keraslm.text.SentencePieceTokenizer.train(lines, vocabulary_size=400)
    for name in ("decoder.onnx", "genai_config.json"):  # any bundle: og.Model needs one
        shutil.copy(os.path.join(bundle, name), tmp_path / name)
    document, reason = tokenizer_json.tokenizer_json(tokenizer)
    assert reason is None
    (tmp_path / "tokenizer.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_json.tokenizer_config(tokenizer)))
    texts = valid + ["  two  spaces", "a\ttab", "Ünïcödé ﬁ"]
    matching, total, first = tokenizer_json.check_tokenizer(tokenizer, tmp_path, texts)
    assert (matching, first) == (total, None)
    bpe = keraslm.text.SentencePieceTokenizer.train(lines, vocabulary_size=400,
                                                    model_type="bpe")
    assert tokenizer_json.tokenizer_json(bpe)[0] is None  # not written: feed ids
