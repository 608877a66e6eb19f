"""Generation export: a Shakespeare Transformer LM generates the same text in
`litert_lm.Engine`, in the plugin's Python loop over `ai_edge_litert`, and in
`keraslm generate`.

What the checks read the files with: `litert_lm.Engine` itself (its own
tokenizer, sampler and session), a fresh `ai_edge_litert` Interpreter for
signatures and shapes, `keraslm.generation` on the Keras model, and the
tokenizers keraslm trains. One run is trained per test session (300 steps
of a 2-layer, 32-wide character LM on 4,000 lines of Shakespeare: under-
trained, bits per character about 4.1, but it writes words and line ends)
and shared by the tests here, also across pytest-xdist workers (a lock
file).
"""

import fcntl
import itertools
import json
import os

import keras
import numpy as np
import pytest
import shared_data
from ai_edge_litert.interpreter import Interpreter

import keraslm
from keraslm import cli, exporting, generation

import litert_lm
from keraslm_tflite import litertlm
from keraslm_tflite.generation import TFLiteGenerator

BANNED = (0, 1, 4)  # what keraslm generate never produces: padding, unknown, mask
NEW_TOKENS = 48


def lines(name, count):
    with open(shared_data.path("shakespeare", name), encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in itertools.islice(handle, count)]


@pytest.fixture(scope="session")
def shakespeare_lm(tmp_path_factory):
    """`(run_dir, model, tokenizer)`: a character Transformer LM trained on
    the first 4,000 lines of Shakespeare's train.txt (300 steps, 64-token
    windows, cache of 192), validated on 300 lines of valid.txt."""
    from keraslm.training import load_run

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    run = root / "generation_export_shakespeare"
    with open(root / "generation_export_shakespeare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "model.keras").exists():
            data = root / "generation_export_data"
            data.mkdir(exist_ok=True)
            (data / "train.txt").write_text("\n".join(lines("train.txt", 4000)) + "\n")
            (data / "valid.txt").write_text("\n".join(lines("valid.txt", 300)) + "\n")
            keraslm.train(
                task="lm", train=str(data / "train.txt"), valid=str(data / "valid.txt"),
                tokenizer="character", model="transformer_lm",
                model_options={"num_layers": 2, "num_heads": 2, "hidden_dim": 32,
                               "intermediate_dim": 64, "max_sequence_length": 192},
                sequence_length=64, batch_size=16, steps=300, checkpoint_every=300,
                learning_rate=1e-2, seed=0, output_dir=str(run), verbose=False)
    _, _, model, tokenizer = load_run(str(run))
    return run, model, tokenizer


def export_command(capsys, *argv):
    try:
        status = cli.main(["export", *map(str, argv)])
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def text_of(tokenizer, new_ids):
    """What keraslm generate writes for new ids of a run of lines: the
    end-of-text id (3) as a newline."""
    parts = [[]]
    for token in new_ids:
        if token == 3:
            parts.append([])
        else:
            parts[-1].append(token)
    return "\n".join(tokenizer.decode(part) if part else "" for part in parts)


def test_greedy_text_is_identical_in_litert_lm_the_python_loop_and_keraslm(
        shakespeare_lm, tmp_path, capsys):
    run, model, tokenizer = shakespeare_lm
    path = tmp_path / "model.litertlm"
    status, out, err = export_command(capsys, run, "--format", "litertlm", "-o", path,
                                      "--json")
    assert status == 0, err
    report = json.loads(out)
    details = report["details"]
    assert details["signatures"] == ["prefill_8", "prefill_32", "decode"]
    assert details["cache_length"] == 192 and details["tokenizer"] == "hf_tokenizer_json"
    assert report["max_abs_diff"] < 1e-4 and details["greedy_agreement"] == 1.0

    test_lines = [line for line in lines("test.txt", 400) if len(line) > 40]
    prompts = [test_lines[0][:6], test_lines[1][:17], test_lines[2][:40] + " " +
               test_lines[3][:20]]
    assert len(tokenizer.encode(prompts[2])) > max(details["prefill_lengths"])  # chunked
    keras_texts = [text[len(prompt):] for prompt, text in zip(prompts, generation.generate(
        model, tokenizer, prompts, NEW_TOKENS, newline_at_eos=True))]
    # Under-trained (bits per character about 4.1): words like "the", and
    # line ends, which the bundle must write as keraslm does.
    assert len(set(keras_texts)) == 3 and len(set("".join(keras_texts))) > 3

    # litert_lm.Engine as an app runs it: text in, greedy text out.
    (tmp_path / "cache").mkdir()
    engine = litert_lm.Engine(str(path), cache_dir=str(tmp_path / "cache"))

    def session():
        return engine.create_session(sampler_config=litert_lm.SamplerConfig(top_k=1),
                                     max_output_tokens=NEW_TOKENS)

    def turn(open_session, text):
        open_session.run_prefill([text])
        return "".join(open_session.run_decode().texts)

    engine_texts = [turn(session(), prompt) for prompt in prompts]
    second = " Speak, speak."
    conversation = session()  # two turns of one LiteRT-LM session
    turns = [turn(conversation, prompts[1]), turn(conversation, second)]
    engine_ids = [list(engine.tokenize(text)) for text in engine_texts]
    assert engine_texts == keras_texts

    # The Python loop over the bundle's own TFLite file, in ai_edge_litert.
    generator = TFLiteGenerator(litertlm.unpack_tflite(path, tmp_path / "unpacked"))
    assert generator.prefill_lengths == [8, 32]
    loop_ids = []
    for prompt in prompts:
        generator.reset()
        loop_ids.append(generator.generate_ids(tokenizer.encode(prompt), NEW_TOKENS,
                                               banned_ids=BANNED))
    assert [text_of(tokenizer, ids) for ids in loop_ids] == keras_texts
    assert engine_ids == loop_ids  # id for id (the runtime reads a newline as id 3)

    # The second turn continues the cache: the first turn's 48 ids are in it.
    generator.reset()
    first = generator.generate_ids(tokenizer.encode(prompts[1]), NEW_TOKENS,
                                   banned_ids=BANNED)
    then = generator.generate_ids(tokenizer.encode(second), NEW_TOKENS, banned_ids=BANNED)
    assert generator.position == len(tokenizer.encode(prompts[1] + second)) + 2 * NEW_TOKENS
    keras_then = generation.generate_ids(
        model, tokenizer.encode(prompts[1]) + first + tokenizer.encode(second), NEW_TOKENS,
        banned_ids=BANNED)
    assert then == keras_then
    assert turns == [text_of(tokenizer, first), text_of(tokenizer, then)]

    readme = (tmp_path / "model.litertlm.README.txt").read_text()
    for fact in ("prefill_8, prefill_32, decode", "mask float32 [1, 1, N, 192]",
                 "kv_cache_k_i, kv_cache_v_i float32 [1, 192, 2, 16]",
                 "logits float32 [1, N, ", "Cache length: 192", "litert_lm.Engine(",
                 "session.run_prefill"):
        assert fact in readme, fact


def test_dynamic_int8_bundle_size_bits_per_character_and_agreement(
        shakespeare_lm, tmp_path, capsys):
    run, _, _ = shakespeare_lm
    path = tmp_path / "int8.litertlm"
    status, out, err = export_command(capsys, run, "--format", "litertlm", "--quantize",
                                      "dynamic_int8", "-o", path, "--eval-examples", "150",
                                      "--json")
    assert status == 0, err
    report = json.loads(out)
    details = report["details"]
    assert report["size_bytes"] == os.path.getsize(path)
    # Measured 0.82x: a 32-wide model's file is mostly graph, not weights
    # (dynamic-range quantization skips tensors under 1,024 values).
    assert details["size_tflite_bytes"] / details["size_float32_bytes"] < 0.9
    assert details["size_ratio"] == pytest.approx(
        details["size_tflite_bytes"] / details["size_float32_bytes"])
    bits = details["metrics"]["bits_per_character"]
    assert bits["keras"] == pytest.approx(
        json.loads((run / "metrics.json").read_text())["final"]["bits_per_character"],
        abs=0.3)  # 150 of the 300 validation lines
    assert bits["delta"] <= 0.05, bits
    assert details["greedy_agreement"] >= 0.5 and details["argmax_agreement"] >= 0.9
    # The quantized bundle runs in litert_lm.Engine too.
    with litertlm.Engine(path) as engine:
        [text] = engine.generate(["ROMEO: "], 24)
    assert len(text) == 24
    saved = json.loads((tmp_path / "int8.litertlm.report.json").read_text())
    assert saved["details"]["metrics"]["bits_per_character"] == bits


def tiny_lm(vocabulary_size=300):
    keras.utils.set_random_seed(4)
    return keraslm.models.transformer_lm(
        vocabulary_size=vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=64)


def test_tflite_generation_file_signatures_shapes_and_readme(tmp_path):
    model = tiny_lm(64)
    path = tmp_path / "lm.tflite"
    inputs = [np.random.default_rng(1).integers(5, 64, shape).astype("int32")
              for shape in ((1, 9), (2, 30))]
    result = keraslm.export(model, str(path), format="tflite-generation", inputs=inputs,
                            prefill_lengths=(4, 16))
    assert result.max_abs_diff < 1e-5 and result.details["greedy_agreement"] == 1.0
    interpreter = Interpreter(model_path=str(path))
    signatures = interpreter.get_signature_list()
    caches = ["kv_cache_k_0", "kv_cache_v_0"]
    assert sorted(signatures) == ["decode", "prefill_16", "prefill_4"]
    for name, length in (("prefill_4", 4), ("prefill_16", 16), ("decode", 1)):
        assert sorted(signatures[name]["inputs"]) == sorted(
            ["tokens", "input_pos", "mask"] + caches)
        assert sorted(signatures[name]["outputs"]) == sorted(["logits"] + caches)
        runner = interpreter.get_signature_runner(name)
        shapes = {key: list(value["shape"]) for key, value in
                  runner.get_input_details().items()}
        assert shapes == {"tokens": [1, length], "input_pos": [length],
                          "mask": [1, 1, length, 64], "kv_cache_k_0": [1, 64, 2, 8],
                          "kv_cache_v_0": [1, 64, 2, 8]}
        # One call by hand: a prompt of `length` ids at slots 3.. of a cache
        # whose first 3 slots hold the keys/values of 3 earlier ids.
        ids = inputs[1][0, :3 + length]
        _, _, cache = model.call_with_cache(ids[None, :3], model.empty_cache(1, 64), 0)
        cache = np.asarray(cache)
        positions = np.arange(3, 3 + length, dtype="int32")
        mask = np.where(np.arange(64)[None] <= positions[:, None], 0, -np.inf)
        outputs = runner(tokens=ids[None, 3:], input_pos=positions,
                         mask=mask[None, None].astype("float32"),
                         kv_cache_k_0=cache[:, 0, 0], kv_cache_v_0=cache[:, 0, 1])
        want = np.asarray(model(ids[None]))[:, 3:]
        np.testing.assert_allclose(outputs["logits"], want, atol=1e-5)
        _, _, full = model.call_with_cache(ids[None], model.empty_cache(1, 64), 0)
        np.testing.assert_allclose(outputs["kv_cache_k_0"][:, :3 + length],
                                   np.asarray(full)[:, 0, 0, :3 + length], atol=1e-5)
    ops = result.details["ops"]
    assert "DYNAMIC_UPDATE_SLICE" in ops and not any(op.startswith("Flex") for op in ops)
    readme = (tmp_path / "lm.tflite.README.txt").read_text()
    assert "prefill_4, prefill_16, decode" in readme and "TFLiteGenerator(" in readme
    assert "Cache length: 64" in readme


@pytest.fixture(scope="module")
def tiny_generation_file(tmp_path_factory):
    """An untrained 300-id generation file (the tokenizer checks only need
    the runtime to open a bundle)."""
    from keraslm_tflite.generation import convert_generation

    path = tmp_path_factory.mktemp("tiny") / "model.tflite"
    path.write_bytes(convert_generation(tiny_lm(300), prefill_lengths=(8,)))
    return path


@pytest.mark.parametrize("kind", ["sentencepiece_unigram", "sentencepiece_bpe", "byte"])
def test_the_bundled_tokenizer_gives_keraslms_ids_on_real_text(tmp_path, kind,
                                                                tiny_generation_file):
    """The runtime's own tokenizer (`Engine.tokenize`/`detokenize`) on 120
    lines of Shakespeare's test.txt, against keraslm's."""
    from keraslm.text import ByteTokenizer, SentencePieceTokenizer

    text = lines("test.txt", 120)
    # The tokenizer after the model: keras.utils.set_random_seed (in
    # tiny_lm) resets TensorFlow's eager context, which drops the resource
    # of a SentencePiece tokenizer made before it.
    size = 261 if kind == "byte" else 300
    tflite = tiny_generation_file
    if kind == "byte":
        tokenizer = ByteTokenizer()
    else:
        tokenizer = SentencePieceTokenizer.train(lines("train.txt", 3000),
                                                 vocabulary_size=size,
                                                 model_type=kind.split("_")[1])
    assert tokenizer.vocabulary_size == size
    tokenizer_kind, tokenizer_path = litertlm.runtime_tokenizer(tokenizer, str(tmp_path))
    path = tmp_path / "model.litertlm"
    litertlm.build_bundle(str(path), tflite_path=str(tflite), tokenizer_kind=tokenizer_kind,
                          tokenizer_path=tokenizer_path,
                          metadata_text=litertlm.llm_metadata(cache_length=64, stop_ids=[3],
                                                              suppress_ids=[0, 1, 4]),
                          system_metadata={"Authors": "keraslm"})
    with litertlm.Engine(path) as engine:
        for line in text:
            ids = tokenizer.encode(line)
            assert engine.tokenize(line) == ids, line
            assert engine.detokenize(ids) == tokenizer.decode(ids), line


# -- bad input: one line, before any conversion ---------------------------------

@pytest.fixture
def fail_if_converted(monkeypatch):
    def convert(*args, **kwargs):
        raise AssertionError("converted before the options were checked")

    monkeypatch.setattr("keraslm_tflite.generation.convert_generation", convert)


def test_bad_requests_are_refused_before_conversion(tmp_path, fail_if_converted):
    from keraslm.text import CharacterTokenizer, WordTokenizer

    model = tiny_lm(64)
    target = str(tmp_path / "model.litertlm")
    characters = CharacterTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                    + list("abcdefghijklmnopqrstuvwxyz .,;:!?'-"))
    assert characters.vocabulary_size != 64
    classifier = keraslm.registry.task_heads.build(
        "classification", num_classes=2,
        backbone=keraslm.models.transformer_encoder(vocabulary_size=64, num_layers=1,
                                                    num_heads=2, hidden_dim=16,
                                                    intermediate_dim=32,
                                                    max_sequence_length=32))
    word = WordTokenizer.train(["to be or not to be"] * 3, vocabulary_size=64)
    cases = [
        (dict(model=classifier, tokenizer=characters), exporting.ExportError,
         "takes a Transformer causal LM (a transformer_lm run, task lm). Received: "),
        (dict(model=model, tokenizer=characters, quantize="int8"), ValueError,
         "`quantize` must be one of none, float16, dynamic_int8. Received: quantize='int8'"),
        (dict(model=model, tokenizer=characters, cache_length=65), ValueError,
         "`cache_length` must be at most the model's max_sequence_length (64)"),
        (dict(model=model, tokenizer=characters, prefill_lengths=(0,)), ValueError,
         "`prefill_lengths` must be a non-empty list of integers in [1, cache_length=64]"),
        (dict(model=model, tokenizer=None), ValueError, "needs the run's tokenizer"),
        (dict(model=model, tokenizer=word), exporting.ExportError,
         "exactly for sentencepiece, character, byte tokenizers. Received: tokenizer='word'"),
        (dict(model=model, tokenizer=characters), exporting.ExportError,
         "they are not from the same run"),
    ]
    for options, error, message in cases:
        model_ = options.pop("model")
        with pytest.raises(error) as refused:
            keraslm.export(model_, target, format="litertlm",
                           inputs=[np.ones((1, 5), "int32")], **options)
        assert message in str(refused.value), str(refused.value)
        assert "\n" not in str(refused.value)
        assert os.listdir(tmp_path) == []


@pytest.fixture
def classify_run(tmp_path):
    from keraslm.training import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(task="classify", train=str(shared_data.path("reviews", "train.csv")),
                         text_column="text", label_column="label", model="transformer_lm",
                         sequence_length=96)
    (run / "config.json").write_text(json.dumps({"config": config.to_dict()}))
    return run


def test_cli_refuses_bad_requests_in_one_line(classify_run, capsys, tmp_path):
    status, _, err = export_command(capsys, classify_run, "--format", "litertlm")
    assert status == 1
    assert "The litertlm exporter exports lm runs. Received: a classify run" in err, err
    lm_run = tmp_path / "lm"
    lm_run.mkdir()
    config = json.loads((classify_run / "config.json").read_text())
    config["config"]["task"] = "lm"
    (lm_run / "config.json").write_text(json.dumps(config))
    status, _, err = export_command(capsys, lm_run, "--format", "litertlm", "--quantize",
                                    "int8")
    assert status == 1
    assert ("--quantize must be one of none, float16, dynamic_int8 for the litertlm "
            "exporter. Received: --quantize int8") in err, err
    existing = tmp_path / "old.litertlm"
    existing.write_bytes(b"an earlier export")
    status, _, err = export_command(capsys, lm_run, "--format", "litertlm", "-o", existing)
    assert status == 1 and f"The output {existing} exists. Pass --overwrite" in err, err
    assert existing.read_bytes() == b"an earlier export"
    for error in err.strip().splitlines():
        assert error.startswith("keraslm export: error: ")
