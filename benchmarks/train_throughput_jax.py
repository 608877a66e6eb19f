"""Training throughput of keraslm vs keras-hub on the JAX backend (GPU).

The TensorFlow benchmark (`train_throughput.py`) measures the 2-core CPU
machine; this one measures the same comparison where JAX runs, typically a
GPU: tokens/s of one training step (`train_on_batch`, AdamW, sparse
cross-entropy from logits; Keras compiles the JAX train step with XLA) for
`keraslm.models.transformer_lm` and `keras_hub.models.GPT2CausalLM`
(`GPT2Backbone` + tied head, `preprocessor=None`) of the same shape, in one
process, for float32 and `mixed_bfloat16`, plus the MFU against a large
matmul measured in the same run in the same precision:
`(6 N + 12 L d T)` FLOPs per token times tokens/s over that peak.

Shapes: `issue` is the issue's shape (vocabulary 8192, sequence 256, hidden
256, 4 layers, 4 heads, intermediate 1024, batch 16), far too small to fill
a GPU; `gpt2` is GPT-2 small (vocabulary 50257, sequence 1024, hidden 768,
12 layers, 12 heads, intermediate 3072, batch 16).

    KERAS_BACKEND=jax python benchmarks/train_throughput_jax.py
    KERAS_BACKEND=jax python benchmarks/train_throughput_jax.py --shapes issue --quick

Writes benchmarks/results/train_throughput_jax.json and .md.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {
    "issue": dict(vocabulary_size=8192, sequence_length=256, hidden_dim=256,
                  num_layers=4, num_heads=4, intermediate_dim=1024, batch_size=16),
    "gpt2": dict(vocabulary_size=50257, sequence_length=1024, hidden_dim=768,
                 num_layers=12, num_heads=12, intermediate_dim=3072, batch_size=16),
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES),
                        default=["issue", "gpt2"])
    parser.add_argument("--precisions", nargs="+",
                        choices=("float32", "mixed_bfloat16"),
                        default=["float32", "mixed_bfloat16"])
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved repetitions per comparison")
    parser.add_argument("--steps", type=int, default=10,
                        help="training steps per repetition")
    parser.add_argument("--quick", action="store_true",
                        help="3 repetitions of 2 steps")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"
                                                / "train_throughput_jax"))
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.repeats, arguments.steps = 3, 2
    return arguments


def block(value):
    import jax

    return jax.block_until_ready(value)


def matmul_peak(dtype, size=8192, repeats=10):
    """FLOP/s of `size`^3 matmuls in `dtype` (float32 uses the default precision)."""
    import jax

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), dtype)
    product = jax.jit(lambda a, b: a @ b)
    block(product(a, b))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(product(a, b))
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times)


def build(shape, precision):
    import keras
    import keras_hub

    import keraslm

    keras.config.set_dtype_policy(precision)
    model_shape = dict(vocabulary_size=shape["vocabulary_size"],
                       num_layers=shape["num_layers"], num_heads=shape["num_heads"],
                       hidden_dim=shape["hidden_dim"],
                       intermediate_dim=shape["intermediate_dim"],
                       max_sequence_length=shape["sequence_length"], dropout=0.0)
    keras.utils.set_random_seed(0)
    ours = keraslm.models.transformer_lm(**model_shape)
    backbone = keras_hub.models.GPT2Backbone(**model_shape)
    peer = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    keras.config.set_dtype_policy("float32")
    return ours, peer, backbone.count_params()


def measure(shape_name, precision, arguments):
    import keras
    import numpy as np

    shape = SHAPES[shape_name]
    ours, peer, peer_parameters = build(shape, precision)
    batch, length = shape["batch_size"], shape["sequence_length"]
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, shape["vocabulary_size"], (batch, length)).astype("int32")
    labels = rng.integers(1, shape["vocabulary_size"], (batch, length)).astype("int32")
    peer_inputs = {"token_ids": token_ids,
                   "padding_mask": np.ones((batch, length), "int32")}
    for model in (ours, peer):
        model.compile(optimizer=keras.optimizers.AdamW(1e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = {
        "keraslm": lambda: ours.train_on_batch(token_ids, labels),
        "keras_hub": lambda: peer.train_on_batch(peer_inputs, labels),
    }
    for step in steps.values():  # compile and warm up
        for _ in range(3):
            step()
    seconds = {name: [] for name in steps}
    names = list(steps)
    for repeat in range(arguments.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            for _ in range(arguments.steps):
                loss = steps[name]()
            np.asarray(loss)  # host values: the step has finished
            seconds[name].append((time.perf_counter() - start) / arguments.steps)
    tokens = batch * length
    L, d, T = shape["num_layers"], shape["hidden_dim"], length
    result = {"shape": shape, "precision": precision,
              "parameters": {"keraslm": ours.count_params(), "keras_hub": peer_parameters}}
    for name in names:
        n = result["parameters"][name]
        result[name] = {
            "tokens_per_second": tokens / statistics.median(seconds[name]),
            "tokens_per_second_best": tokens / min(seconds[name]),
            "seconds_per_step": seconds[name],
            "flops_per_token": 6 * n + 12 * L * d * T,
        }
    result["ratio"] = (result["keraslm"]["tokens_per_second"]
                       / result["keras_hub"]["tokens_per_second"])
    result["paired_ratio"] = statistics.median(
        p / o for o, p in zip(seconds["keraslm"], seconds["keras_hub"]))
    return result


def write_markdown(path, results):
    m = results["machine"]
    lines = [
        "# Training throughput on the JAX backend: keraslm vs keras-hub",
        "",
        f"`{results['command']}`",
        "",
        f"{m['date']} · {m['device']} · JAX {m['jax']} · Keras {m['keras']} · "
        f"keras-hub {m['keras_hub']}",
        "",
        "Matmul peak measured in this run (8192^3, median of 10): "
        + ", ".join(f"{p} {v / 1e12:.0f} TFLOP/s" for p, v in results["peak"].items())
        + ". MFU = tokens/s x (6N + 12·L·d·T) / that peak.",
        "",
        "| shape | precision | keraslm tokens/s | keras-hub tokens/s | ratio (medians) "
        "| ratio (paired) | keraslm MFU | keras-hub MFU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in results["runs"]:
        peak = results["peak"]["bfloat16" if "bfloat16" in entry["precision"]
                               else "float32"]
        ours, peer = entry["keraslm"], entry["keras_hub"]
        mfu = {name: entry[name]["tokens_per_second"] * entry[name]["flops_per_token"]
               / peak for name in ("keraslm", "keras_hub")}
        lines.append(
            f"| {entry['shape_name']} | {entry['precision']} "
            f"| {ours['tokens_per_second']:,.0f} | {peer['tokens_per_second']:,.0f} "
            f"| {entry['ratio']:.2f}x | {entry['paired_ratio']:.2f}x "
            f"| {mfu['keraslm']:.0%} | {mfu['keras_hub']:.0%} |")
    lines += [
        "",
        "Shapes: " + "; ".join(
            f"`{name}`: " + ", ".join(f"{k} {v}" for k, v in SHAPES[name].items())
            for name in dict.fromkeys(e["shape_name"] for e in results["runs"])),
        "Each comparison alternates repetitions of both models "
        f"({results['arguments']['repeats']} x {results['arguments']['steps']} "
        "steps, order reversed every repetition) and reports medians.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None):
    import jax
    import keras
    import keras_hub

    arguments = parse_arguments(argv)
    command = "KERAS_BACKEND=jax python benchmarks/train_throughput_jax.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    device = jax.devices()[0]
    results = {
        "command": command.strip(),
        "arguments": vars(arguments),
        "machine": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "device": getattr(device, "device_kind", str(device)),
            "platform": platform.platform(),
            "jax": jax.__version__, "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
        },
        "peak": {}, "runs": [],
    }
    for precision in ("float32", "bfloat16"):
        results["peak"][precision] = matmul_peak(precision)
        print("peak", precision, round(results["peak"][precision] / 1e12), "TFLOP/s",
              flush=True)
    for shape_name in arguments.shapes:
        for precision in arguments.precisions:
            entry = measure(shape_name, precision, arguments)
            entry["shape_name"] = shape_name
            results["runs"].append(entry)
            print(shape_name, precision,
                  {n: round(entry[n]["tokens_per_second"]) for n in ("keraslm", "keras_hub")},
                  f"ratio {entry['ratio']:.2f}", flush=True)
    output = pathlib.Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(output.with_suffix(".md"), results)
    print(output.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
