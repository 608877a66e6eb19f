"""Exported generation against Keras: batch-1 forward latency and greedy tokens/s.

For a Shakespeare-shaped `keraslm.models.transformer_lm` (the shape of
examples/shakespeare_lm.py: vocabulary 4096, 4 layers, 4 heads, hidden 256,
intermediate 1024; random weights, nothing downloaded), in one process,
float32 on CPU, batch 1, a 16-token prompt continued by 128 new tokens
(greedy, every series generating all of them: no stop id; ids 0 and 4,
padding and [MASK], banned everywhere, as the onnx-genai bundle masks them):

- `keraslm` : `keraslm.generation.generate_ids` (prefill, then its XLA
  `while_loop` over the cached step);
- `onnxruntime` / `onnxruntime_int8` : the past/present decoder
  (`keraslm_onnx.decoder`, float32 and `quantize_dynamic` int8) driven by
  `keraslm_onnx.generation.greedy`;
- `onnxruntime_genai` / `onnxruntime_genai_int8` : the `onnx-genai` bundle
  in `og.Generator` (ids fed with `append_tokens`);
- `litert` / `litert_int8` : the TFLite `prefill_N`/`decode` file of
  plugins/keraslm-tflite (`keraslm_tflite.generation.convert_generation`,
  float32 and dynamic int8) in `TFLiteGenerator` (ai_edge_litert); skipped
  with a note when that plugin lacks it;
- `keras_hub` : keras-hub `GPT2CausalLM.generate` of the same shape (its
  weights copied into keraslm's model, as benchmarks/generate_speed.py
  does), greedy sampler, default compile (graph, no XLA on CPU).

"Forward" is one call on the 16-token prompt that returns its logits
(Keras: `model(x)`; onnxruntime: the decoder with an empty cache; LiteRT:
`prefill_16`... through `TFLiteGenerator.append`; keras-hub: the GPT-2
causal LM's `call`); onnxruntime-genai has no forward call of its own and
is timed on generation only. Calls alternate between series (order
reversed every repetition); medians are reported with the ratio to
keraslm and to keras-hub measured in the same run, and the load average,
since the machine's cores may be shared.

Usage:

    .venv/bin/python benchmarks/export_latency.py            # full run
    .venv/bin/python benchmarks/export_latency.py --quick    # smoke run (tiny shape)

Writes benchmarks/results/export_latency.json and .md (`--output` to write
elsewhere).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

BANNED = (0, 4)
LABELS = {
    "keraslm": "keraslm `generate_ids` (Keras, TF, XLA loop)",
    "onnxruntime": "onnxruntime, float32 (keraslm_onnx.generation.greedy)",
    "onnxruntime_int8": "onnxruntime, dynamic int8",
    "onnxruntime_genai": "onnxruntime-genai 0.18, float32 bundle",
    "onnxruntime_genai_int8": "onnxruntime-genai 0.18, dynamic int8 bundle",
    "litert": "LiteRT, float32 (keraslm_tflite TFLiteGenerator)",
    "litert_int8": "LiteRT, dynamic int8",
    "keras_hub": "keras-hub `GPT2CausalLM.generate` (default compile)",
}
EXPORTED = ("onnxruntime", "onnxruntime_int8", "onnxruntime_genai",
            "onnxruntime_genai_int8", "litert", "litert_int8")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary-size", type=int, default=4096)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--max-sequence-length", type=int, default=256)
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--forward-repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="tiny shape, 2 repeats: checks the script runs")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"
                                                / "export_latency"))
    arguments = parser.parse_args(argv)
    arguments.num_beams = 1  # generate_speed.build_models reads it
    if arguments.quick:
        arguments.vocabulary_size, arguments.hidden_dim = 512, 64
        arguments.num_layers, arguments.num_heads = 2, 2
        arguments.intermediate_dim, arguments.max_sequence_length = 128, 160
        arguments.new_tokens, arguments.repeats, arguments.forward_repeats = 32, 2, 5
    return arguments


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else 0.5 * (values[middle - 1] + values[middle])


def interleaved(functions, repeats):
    """Wall and CPU seconds (this process, all threads) of each call of each
    (warmed-up) function, alternating between functions, the order reversed
    every repetition."""
    names = list(functions)
    seconds = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            functions[name]()
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return seconds, cpu


def build(arguments, directory):
    """The models and the exported files: `(ours, hub, files, notes)`."""
    import keras
    import keras_hub

    import keraslm
    from generate_speed import copy_weights
    from keraslm_onnx import decoder, genai

    shape = dict(vocabulary_size=arguments.vocabulary_size,
                 num_layers=arguments.num_layers, num_heads=arguments.num_heads,
                 hidden_dim=arguments.hidden_dim,
                 intermediate_dim=arguments.intermediate_dim,
                 max_sequence_length=arguments.max_sequence_length, dropout=0.0)
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(**shape)
    ours = keraslm.models.transformer_lm(**shape)
    copy_weights(backbone, ours)
    hub = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    hub.compile(sampler="greedy")

    files, notes, seconds = {}, {}, {}
    start = time.perf_counter()
    onnx_path = os.path.join(directory, "decoder.onnx")
    decoder.convert_decoder(ours, onnx_path, banned_ids=BANNED)
    seconds["onnx"] = time.perf_counter() - start
    files["onnxruntime"] = onnx_path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = os.path.join(directory, "decoder.int8.onnx")
    quantize_dynamic(onnx_path, int8_path, weight_type=QuantType.QInt8)
    files["onnxruntime_int8"] = int8_path
    for name, source in (("onnxruntime_genai", onnx_path), ("onnxruntime_genai_int8", int8_path)):
        bundle = os.path.join(directory, name)
        os.makedirs(bundle)
        os.link(source, os.path.join(bundle, genai.DECODER_FILENAME))
        with open(os.path.join(bundle, "genai_config.json"), "w") as f:
            json.dump(genai.genai_config(decoder.dimensions(ours), bos_id=2, eos_id=0,
                                         pad_id=0), f)
        files[name] = bundle
    try:
        from keraslm_tflite.generation import TFLiteGenerator, convert_generation  # noqa: F401
    except ImportError as error:
        # Hook: the LiteRT series run once plugins/keraslm-tflite has them.
        notes["litert"] = f"skipped: keraslm_tflite.generation is not available ({error})"
    else:
        for name, quantize in (("litert", "none"), ("litert_int8", "dynamic_int8")):
            start = time.perf_counter()
            content = convert_generation(
                ours, cache_length=arguments.max_sequence_length,
                prefill_lengths=(arguments.prompt_length,), quantize=quantize)
            seconds[name] = time.perf_counter() - start
            path = os.path.join(directory, f"{name}.tflite")
            with open(path, "wb") as f:
                f.write(content)
            files[name] = path
    return ours, hub, files, notes, seconds


def size_of(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))
    return os.path.getsize(path)


def series(arguments, ours, hub, files):
    """`{name: (forward, generate)}`: callables; generate returns the new ids."""
    import numpy as np
    import onnxruntime_genai as og
    import tensorflow as tf

    import keraslm
    from keraslm_onnx import genai, generation

    rng = np.random.default_rng(0)
    prompt = rng.integers(5, arguments.vocabulary_size, arguments.prompt_length).tolist()
    batch = np.asarray([prompt], "int32")
    new = arguments.new_tokens
    calls = {}

    calls["keraslm"] = (
        lambda: np.asarray(ours(batch, training=False)),
        lambda: keraslm.generation.generate_ids(ours, prompt, new, sampler="greedy",
                                                banned_ids=BANNED))
    for name in ("onnxruntime", "onnxruntime_int8"):
        runner = generation.OnnxDecoder(generation.session(files[name]))
        calls[name] = (
            lambda runner=runner: runner.prefill([prompt])[0],
            lambda runner=runner: generation.greedy(runner, prompt, new, banned_ids=BANNED))
    for name in ("onnxruntime_genai", "onnxruntime_genai_int8"):
        model = og.Model(files[name])
        calls[name] = (None, lambda model=model: genai.greedy(model, prompt, new, eos_id=0))
    for name in ("litert", "litert_int8"):
        if name in files:
            from keraslm_tflite.generation import TFLiteGenerator

            runner = TFLiteGenerator(files[name])

            def forward(runner=runner):
                runner.reset()
                return runner.append(prompt)

            def generate(runner=runner):
                runner.reset()
                return runner.generate_ids(prompt, new, banned_ids=BANNED)

            calls[name] = (forward, generate)

    inputs = {"token_ids": np.zeros((1, len(prompt) + new), "int32"),
              "padding_mask": np.zeros((1, len(prompt) + new), "bool")}
    inputs["token_ids"][0, :len(prompt)] = prompt
    inputs["padding_mask"][0, :len(prompt)] = True
    hub_forward_inputs = {"token_ids": batch, "padding_mask": np.ones_like(batch, bool)}

    def hub_generate():
        out = hub.generate(inputs, stop_token_ids=None)
        return np.asarray(out["token_ids"])[0, len(prompt):].tolist()

    calls["keras_hub"] = (
        lambda: np.asarray(hub(hub_forward_inputs, training=False)), hub_generate)
    del tf
    return calls


def main(argv=None):
    arguments = parse_arguments(argv)
    import keras
    import numpy as np
    import onnxruntime
    import onnxruntime_genai as og
    import tensorflow as tf

    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as directory:
        ours, hub, files, notes, convert_seconds = build(arguments, directory)
        sizes = {name: size_of(path) for name, path in files.items()}
        calls = series(arguments, ours, hub, files)
        ids = {name: generate() for name, (_, generate) in calls.items()}  # warm-up
        for name, (forward, _) in calls.items():
            if forward is not None:
                forward()
        agreement = {}
        for name, row in ids.items():
            same = 0
            for a, b in zip(row, ids["keraslm"]):
                if a != b:
                    break
                same += 1
            agreement[name] = same
        forward_seconds, _ = interleaved(
            {name: forward for name, (forward, _) in calls.items() if forward is not None},
            arguments.forward_repeats)
        generate_seconds, generate_cpu = interleaved(
            {name: generate for name, (_, generate) in calls.items()}, arguments.repeats)
    load_end = list(os.getloadavg())

    results = {}
    for name in calls:
        wall = generate_seconds[name]
        results[name] = {
            "label": LABELS[name],
            "forward_ms": (1e3 * median(forward_seconds[name])
                           if name in forward_seconds else None),
            "tokens_per_second": arguments.new_tokens / median(wall),
            "tokens_per_cpu_second": arguments.new_tokens / median(generate_cpu[name]),
            "generate_seconds": wall, "generate_cpu_seconds": generate_cpu[name],
            "size_bytes": sizes.get(name),
            "greedy_ids_equal_to_keraslm": agreement[name],
        }
    for name, values in results.items():
        values["speedup_vs_keraslm"] = (values["tokens_per_second"]
                                        / results["keraslm"]["tokens_per_second"])
        values["speedup_vs_keras_hub"] = (values["tokens_per_second"]
                                          / results["keras_hub"]["tokens_per_second"])
        values["cpu_speedup_vs_keraslm"] = (values["tokens_per_cpu_second"]
                                            / results["keraslm"]["tokens_per_cpu_second"])
        values["cpu_speedup_vs_keras_hub"] = (values["tokens_per_cpu_second"]
                                              / results["keras_hub"]["tokens_per_cpu_second"])
    weights = sum(int(np.prod(w.shape)) for w in ours.weights)
    report = {
        "shape": {k: getattr(arguments, k) for k in (
            "vocabulary_size", "num_layers", "num_heads", "hidden_dim",
            "intermediate_dim", "max_sequence_length", "prompt_length", "new_tokens")},
        "parameters": weights,
        "float32_weights_bytes": 4 * weights,
        "repeats": arguments.repeats, "forward_repeats": arguments.forward_repeats,
        "results": results, "notes": notes, "conversion_seconds": convert_seconds,
        "targets": {
            "exported_at_least_2x_keraslm": {
                name: results[name]["speedup_vs_keraslm"] >= 2 for name in EXPORTED
                if name in results},
            "exported_at_least_5x_keras_hub": {
                name: results[name]["speedup_vs_keras_hub"] >= 5 for name in EXPORTED
                if name in results}},
        "machine": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "onnxruntime": onnxruntime.__version__,
            "onnxruntime_genai": og.__version__,
            "load_average_start": load_start, "load_average_end": load_end,
        },
        "quick": arguments.quick,
    }
    output = pathlib.Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(report, indent=2))
    output.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report):
    shape = report["shape"]
    machine = report["machine"]
    lines = [
        "# Exported generation: latency and greedy tokens/s (batch 1, CPU)",
        "",
        f"`benchmarks/export_latency.py`{' --quick' if report['quick'] else ''}, "
        f"{machine['date']}. TransformerLM vocabulary {shape['vocabulary_size']}, "
        f"{shape['num_layers']} layers, {shape['num_heads']} heads, hidden "
        f"{shape['hidden_dim']}, intermediate {shape['intermediate_dim']} "
        f"({report['parameters']:,} parameters, random weights); prompt "
        f"{shape['prompt_length']} -> {shape['new_tokens']} new ids, greedy. "
        f"{machine['cpu_count']} CPU cores, **load average "
        f"{machine['load_average_start'][0]:.1f} at the start, "
        f"{machine['load_average_end'][0]:.1f} at the end** (the cores were shared "
        f"with other jobs: absolute figures are noisy, the ratios come from calls "
        f"interleaved in the same run). TensorFlow {machine['tensorflow']}, Keras "
        f"{machine['keras']}, onnxruntime {machine['onnxruntime']}, onnxruntime-genai "
        f"{machine['onnxruntime_genai']}. Medians of {report['repeats']} generations "
        f"and {report['forward_repeats']} forward calls.",
        "",
        "| runtime | forward ms | new tokens/s | x keraslm | x keras-hub | "
        "tokens per CPU s | x keraslm (CPU) | x keras-hub (CPU) | file MB | "
        "greedy ids = keraslm |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, values in report["results"].items():
        forward = "-" if values["forward_ms"] is None else f"{values['forward_ms']:.2f}"
        size = "-" if values["size_bytes"] is None else f"{values['size_bytes'] / 1e6:.2f}"
        lines.append(
            f"| {values['label']} | {forward} | {values['tokens_per_second']:.0f} | "
            f"{values['speedup_vs_keraslm']:.2f} | {values['speedup_vs_keras_hub']:.2f} | "
            f"{values['tokens_per_cpu_second']:.0f} | {values['cpu_speedup_vs_keraslm']:.2f} | "
            f"{values['cpu_speedup_vs_keras_hub']:.2f} | {size} | {values['greedy_ids_equal_to_keraslm']}/{shape['new_tokens']} |")
    lines += ["", f"float32 weights: {report['float32_weights_bytes'] / 1e6:.2f} MB."]
    for name, note in report["notes"].items():
        lines.append(f"**{name}: {note}**")
    targets = report["targets"]
    lines += ["", "Targets (decode tokens/s, same run):", "",
              "- exported >= 2x keraslm: "
              + ", ".join(f"{k} {'yes' if v else 'NO'}"
                          for k, v in targets["exported_at_least_2x_keraslm"].items()),
              "- exported >= 5x keras-hub: "
              + ", ".join(f"{k} {'yes' if v else 'NO'}"
                          for k, v in targets["exported_at_least_5x_keras_hub"].items()),
              "",
              "Tokens per CPU second count this process's CPU time (all its threads): "
              "less sensitive to other jobs on the cores than wall time, it is the "
              "figure to compare when the load average is above the core count.",
              "",
              "Greedy ids equal to keraslm: leading ids equal (random weights; int8 "
              "files part from float32 where two logits are close). onnxruntime-genai "
              "has no separate forward call. keras-hub's forward is `GPT2CausalLM` "
              "called on the prompt."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
