"""Training and generation throughput of keraslm models against keras-hub.

Measures, in one process on the TensorFlow backend (float32):

1. the machine's peak: a large float32 matmul (`tf.matmul`, 2048x2048 by
   default), in GFLOP/s, measured in the same run between the model timings;
2. tokens/s of one training step (`train_on_batch`, AdamW, each library's
   own sparse cross-entropy from logits: keraslm's
   `masked_sparse_categorical_crossentropy`, which `keraslm.train` uses for
   language models, and for keras-hub `keras.losses.SparseCategoricalCrossentropy`,
   which `GPT2CausalLM.compile` uses by default; a third series runs the
   keras-hub model with keraslm's loss, so the model-only ratio is there too)
   in three XLA modes, both models in each: `on`
   (`jit_compile=True`, the whole step in XLA), `off` (`jit_compile=False`,
   which is also what Keras picks by default on a CPU-only machine) and
   `fusible` (keraslm's `xla="fusible"`: XLA fuses the element-wise ops,
   TensorFlow's oneDNN kernels run the matmuls), for
   `keraslm.models.transformer_lm` and for `keras_hub.models.GPT2CausalLM`
   (`GPT2Backbone` + tied head, `preprocessor=None`) of the same shape
   (default: vocabulary 8192, sequence 256, hidden 256, 4 layers, 4 heads,
   intermediate 1024, batch 16, dropout 0), the ratio ours / keras-hub and
   the MFU: `(6 N + 12 L d T)` FLOPs per token (N = parameter count, nanoGPT
   / PaLM estimate) times tokens/s over the measured matmul peak; then
   keraslm in its fastest mode against keras-hub in each of its modes;
3. the LSTM LM baseline: `keraslm.models.lstm_lm` against the plain Keras
   `Embedding -> LSTM -> Dense` of the same shape (XLA on; the same three
   series: each with its own loss, and Keras' model with keraslm's loss);
4. the loss alone: forward and backward of each cross-entropy on logits of
   the training shape (batch, sequence, vocabulary), not compiled as a whole;
5. cached greedy generation tokens/s (batch 1, 16-token prompt, 128 new
   tokens): `keraslm.generation.generate_ids` with a `TransformerLM` against
   `keras_hub.models.GPT2CausalLM.generate` with the greedy sampler.

The machine is shared (2 cores, other jobs running), so each comparison is
interleaved: repetitions alternate between ours and the peer (the order
flips every repetition) and the medians are compared, so that load changes
hit both alike.

Usage:

    .venv/bin/python benchmarks/train_throughput.py            # full run
    .venv/bin/python benchmarks/train_throughput.py --quick    # smoke run
    .venv/bin/python benchmarks/train_throughput.py --hidden-dim 128 \\
        --num-layers 2 --sequence-length 128 --no-lstm --no-generate

Writes benchmarks/results/train_throughput.json and .md (use `--output` to
write elsewhere, e.g. for `--quick` runs).
"""

import argparse
import contextlib
import datetime
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keraslm  # noqa: E402  (before TensorFlow loads: the "fusible" mode's flags)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary-size", type=int, default=8192)
    parser.add_argument("--sequence-length", type=int, default=256)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lstm-hidden-dim", type=int, default=128,
                        help="embedding width of the LSTM LMs")
    parser.add_argument("--lstm-units", type=int, default=256)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=7,
                        help="interleaved repetitions per comparison")
    parser.add_argument("--steps", type=int, default=2,
                        help="training steps per repetition")
    parser.add_argument("--xla", choices=("all", "both", "on", "off", "fusible"),
                        default="all",
                        help="modes to measure; all: on, off and fusible; both: on and off")
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--no-lstm", action="store_true")
    parser.add_argument("--no-generate", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="3 repetitions of 1 step, 32 new tokens")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"
                                                / "train_throughput"),
                        help="path prefix of the .json and .md results")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.repeats = min(arguments.repeats, 3)
        arguments.steps = 1
        arguments.new_tokens = min(arguments.new_tokens, 32)
    return arguments


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return 0.5 * (values[middle - 1] + values[middle])


def interleaved(functions, repeats, calls=1):
    """Wall and CPU seconds per call of each function, repetitions alternating.

    `functions` maps names to callables (already warmed up). Each repetition
    runs every function `calls` times; the order reverses every repetition.
    Returns `{name: {"wall": [...], "cpu": [...]}}`, one entry per
    repetition. CPU time is this process's (all threads): it moves much less
    than wall time when other jobs compete for the cores.
    """
    names = list(functions)
    seconds = {name: {"wall": [], "cpu": []} for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                functions[name]()
            seconds[name]["wall"].append((time.perf_counter() - wall) / calls)
            seconds[name]["cpu"].append((time.process_time() - cpu) / calls)
    return seconds


def summarize(seconds, ours, peer, work):
    """Rates (`work` per second) of two interleaved series and their ratios.

    `paired_ratio` is the median over repetitions of peer time / our time
    for the two runs of the same repetition, which sit next to each other in
    time: the estimate least moved by load that changes during the run.
    """
    summary = {}
    for name in (ours, peer):
        wall, cpu = seconds[name]["wall"], seconds[name]["cpu"]
        summary[name] = {
            "per_second": work / median(wall),
            "per_second_best": work / min(wall),
            "per_cpu_second": work / median(cpu),
            "wall_seconds": wall,
            "cpu_seconds": cpu,
        }
    pairs = zip(seconds[ours]["wall"], seconds[peer]["wall"])
    summary["ratio"] = summary[ours]["per_second"] / summary[peer]["per_second"]
    summary["paired_ratio"] = median([p / o for o, p in pairs])
    summary["cpu_ratio"] = (summary[ours]["per_cpu_second"]
                            / summary[peer]["per_cpu_second"])
    return summary


def matmul_peak(size, target_seconds=0.5):
    """A callable running `size`^3 float32 matmuls for about `target_seconds`.

    Returns the callable and the FLOPs of one call. Several matmuls per call
    make each timing span a stretch of time comparable to a training step,
    so that both sample the machine's load alike.
    """
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    product().numpy()
    start = time.perf_counter()
    product().numpy()
    repeats = max(1, round(target_seconds / (time.perf_counter() - start)))

    def run():
        for _ in range(repeats):
            product().numpy()

    return run, 2.0 * size**3 * repeats


def build_models(arguments):
    import keras
    import keras_hub

    import keraslm

    shape = dict(vocabulary_size=arguments.vocabulary_size,
                 num_layers=arguments.num_layers,
                 num_heads=arguments.num_heads,
                 hidden_dim=arguments.hidden_dim,
                 intermediate_dim=arguments.intermediate_dim,
                 max_sequence_length=arguments.sequence_length, dropout=0.0)
    keras.utils.set_random_seed(0)
    ours = keraslm.models.transformer_lm(**shape)
    backbone = keras_hub.models.GPT2Backbone(**shape)
    peer = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    # The same keras-hub model again (same weights), compiled with keraslm's
    # loss: a Keras model holds one compiled loss at a time.
    peer_same_loss = keras_hub.models.GPT2CausalLM(
        backbone=keras_hub.models.GPT2Backbone(**shape), preprocessor=None)
    peer_same_loss.set_weights(peer.get_weights())
    return ours, peer, peer_same_loss, backbone


def losses():
    """`(keraslm's LM loss, Keras' sparse cross-entropy)`, as each library
    compiles a language model by default."""
    import keras

    import keraslm

    ours = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy")
    return ours, keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_step_functions(arguments, ours, peer, peer_same_loss, mode):
    import keras
    import numpy as np
    import tensorflow as tf

    batch, length = arguments.batch_size, arguments.sequence_length
    rng = np.random.default_rng(0)
    # Ids from 1: id 0 is keraslm's padding id, and there is no padding here.
    token_ids = tf.constant(rng.integers(1, arguments.vocabulary_size,
                                         (batch, length)), "int32")
    labels = tf.constant(rng.integers(1, arguments.vocabulary_size,
                                      (batch, length)), "int32")
    peer_inputs = {"token_ids": token_ids,
                   "padding_mask": tf.ones((batch, length), "int32")}
    our_loss, keras_loss = losses()
    for model, loss in ((ours, our_loss), (peer, keras_loss),
                        (peer_same_loss, our_loss)):
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss,
                      jit_compile=mode == "on")
    return {
        "keraslm": lambda: ours.train_on_batch(token_ids, labels),
        "keras_hub": lambda: peer.train_on_batch(peer_inputs, labels),
        "keras_hub_same_loss": lambda: peer_same_loss.train_on_batch(
            peer_inputs, labels),
    }


def same_loss_summary(seconds, ours, peer, work):
    """Our ratios against the peer model compiled with keraslm's loss."""
    summary = summarize(seconds, ours, peer, work)
    return {"peer": summary[peer], "ratio": summary["ratio"],
            "paired_ratio": summary["paired_ratio"],
            "cpu_ratio": summary["cpu_ratio"]}


def measure_training(arguments, results):
    ours, peer, peer_same_loss, backbone = build_models(arguments)
    n_ours, n_peer = ours.count_params(), backbone.count_params()
    L, d, T = arguments.num_layers, arguments.hidden_dim, arguments.sequence_length
    tokens = arguments.batch_size * T
    results["parameters"] = {"keraslm": n_ours, "keras_hub": n_peer}
    peak_call, peak_flops = matmul_peak(arguments.matmul_size)
    modes = {"all": ("on", "off", "fusible"), "both": ("on", "off")}.get(
        arguments.xla, (arguments.xla,))
    peak_seconds = []
    for mode in modes:
        functions = train_step_functions(arguments, ours, peer, peer_same_loss,
                                         mode)
        # The train functions are instantiated (clustered) on their first
        # call, so "fusible" needs the whole measurement inside the context.
        with (keraslm.training.fusible_xla() if mode == "fusible"
              else contextlib.nullcontext()):
            for function in functions.values():  # compile + warm up
                function()
                function()
            functions["matmul"] = peak_call
            seconds = interleaved(functions, arguments.repeats, arguments.steps)
        peak_seconds += seconds["matmul"]["wall"]
        key = f"xla_{mode}"
        results["training"][key] = summarize(seconds, "keraslm", "keras_hub",
                                             tokens)
        results["training"][key]["same_loss"] = same_loss_summary(
            seconds, "keraslm", "keras_hub_same_loss", tokens)
        results["training"][key]["matmul_gflops"] = (
            peak_flops / median(seconds["matmul"]["wall"]) / 1e9)
        print(key, {name: round(tokens / median(seconds[name]["wall"]))
                    for name in functions if name != "matmul"}, flush=True)
    peak = peak_flops / median(peak_seconds) / 1e9
    peak_best = peak_flops / min(peak_seconds) / 1e9
    results["matmul_peak_gflops"] = peak
    results["matmul_peak_gflops_best"] = peak_best
    results["matmul_size"] = arguments.matmul_size
    for entry in results["training"].values():
        for rates, n in ((entry["keraslm"], n_ours), (entry["keras_hub"], n_peer),
                         (entry["same_loss"]["peer"], n_peer)):
            flops_per_token = 6 * n + 12 * L * d * T
            rates["flops_per_token"] = flops_per_token
            rates["mfu"] = rates["per_second"] * flops_per_token / (peak * 1e9)
            rates["mfu_best"] = (rates["per_second_best"] * flops_per_token
                                 / (peak_best * 1e9))
    training = results["training"]
    fastest = max(training, key=lambda key: training[key]["keraslm"]["per_second"])
    results["train_tokens_per_second"] = training[fastest]["keraslm"]["per_second"]
    # Our fastest mode against the peer in each mode. Different rotations,
    # so only medians compare (no pairs); each rotation's matmul median is
    # kept beside it to show whether the machine's speed moved in between.
    results["fastest_versus_peer_modes"] = {
        "keraslm_mode": fastest,
        "keraslm_per_second": training[fastest]["keraslm"]["per_second"],
        "ratios": {key: training[fastest]["keraslm"]["per_second"]
                   / entry["keras_hub"]["per_second"]
                   for key, entry in training.items()},
    }
    return ours, peer


def measure_loss(arguments, results):
    """Forward + backward of each loss alone on training-shaped logits."""
    import numpy as np
    import tensorflow as tf

    shape = (arguments.batch_size, arguments.sequence_length,
             arguments.vocabulary_size)
    rng = np.random.default_rng(3)
    logits = tf.Variable(rng.standard_normal(shape, dtype="float32"))
    labels = tf.constant(rng.integers(1, shape[-1], shape[:2]), "int32")
    our_loss, keras_loss = losses()

    def step(loss):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                value = loss(labels, logits)
            return value, tape.gradient(value, logits)[0, 0, 0]

        return lambda: [t.numpy() for t in run()]

    functions = {"keraslm": step(our_loss), "keras": step(keras_loss)}
    for function in functions.values():
        function()
        function()
    seconds = interleaved(functions, max(5, arguments.repeats), 3)
    results["loss"] = summarize(seconds, "keraslm", "keras", 1)
    results["loss"]["shape"] = list(shape)
    print("loss ms", {name: round(1000 * median(seconds[name]["wall"]), 1)
                      for name in functions}, flush=True)


def measure_lstm(arguments, results):
    import keras
    import numpy as np
    import tensorflow as tf

    import keraslm

    V, T, B = arguments.vocabulary_size, arguments.sequence_length, arguments.batch_size
    keras.utils.set_random_seed(0)
    ours = keraslm.models.lstm_lm(vocabulary_size=V,
                                  hidden_dim=arguments.lstm_hidden_dim,
                                  units=arguments.lstm_units, num_layers=1)
    def plain_keras():
        return keras.Sequential([
            keras.Input((T,), dtype="int32"),
            keras.layers.Embedding(V, arguments.lstm_hidden_dim),
            keras.layers.LSTM(arguments.lstm_units, return_sequences=True),
            keras.layers.Dense(V)])

    peer = plain_keras()
    peer_same_loss = plain_keras()
    peer_same_loss.set_weights(peer.get_weights())
    rng = np.random.default_rng(1)
    token_ids = tf.constant(rng.integers(1, V, (B, T)), "int32")
    labels = tf.constant(rng.integers(1, V, (B, T)), "int32")
    our_loss, keras_loss = losses()
    for model, loss in ((ours, our_loss), (peer, keras_loss),
                        (peer_same_loss, our_loss)):
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss,
                      jit_compile=True)
    functions = {"keraslm": lambda: ours.train_on_batch(token_ids, labels),
                 "keras": lambda: peer.train_on_batch(token_ids, labels),
                 "keras_same_loss": lambda: peer_same_loss.train_on_batch(
                     token_ids, labels)}
    for function in functions.values():
        function()
        function()
    seconds = interleaved(functions, arguments.repeats, arguments.steps)
    results["lstm"] = summarize(seconds, "keraslm", "keras", B * T)
    results["lstm"]["same_loss"] = same_loss_summary(seconds, "keraslm",
                                                     "keras_same_loss", B * T)
    for name, model in (("keraslm", ours), ("keras", peer)):
        results["lstm"][name]["parameters"] = model.count_params()
    results["lstm"]["shape"] = dict(hidden_dim=arguments.lstm_hidden_dim,
                                    units=arguments.lstm_units, num_layers=1,
                                    jit_compile=True)
    print("lstm", {name: round(B * T / median(seconds[name]["wall"]))
                   for name in functions}, flush=True)


def measure_generation(arguments, results, ours, peer):
    import numpy as np

    import keraslm

    P, N = arguments.prompt_length, arguments.new_tokens
    if P + N > arguments.sequence_length:
        raise ValueError(
            f"--prompt-length + --new-tokens ({P + N}) exceeds "
            f"--sequence-length ({arguments.sequence_length}).")
    prompt = np.random.default_rng(2).integers(1, arguments.vocabulary_size, P)
    peer.compile(sampler="greedy")
    peer_prompt = {"token_ids": np.zeros((1, P + N), "int32"),
                   "padding_mask": np.zeros((1, P + N), "bool")}
    peer_prompt["token_ids"][0, :P] = prompt
    peer_prompt["padding_mask"][0, :P] = True
    functions = {
        "keraslm": lambda: keraslm.generation.generate_ids(
            ours, prompt.tolist(), N, sampler="greedy", banned_ids=()),
        "keras_hub": lambda: peer.generate(peer_prompt, max_length=P + N,
                                           stop_token_ids=None),
    }
    for function in functions.values():
        function()
        function()
    repeats = max(3, arguments.repeats // 2)
    seconds = interleaved(functions, repeats)
    results["generation"] = summarize(seconds, "keraslm", "keras_hub", N)
    results["generation"]["setup"] = dict(batch=1, prompt_length=P, new_tokens=N,
                                          sampler="greedy")
    print("generation", {name: round(results["generation"][name]["per_second"])
                         for name in functions}, flush=True)


def machine():
    import keras
    import keras_hub
    import tensorflow as tf

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "backend": keras.backend.backend(),
        "load_average_1m_at_start": os.getloadavg()[0],
    }
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def write_markdown(path, arguments, results, command):
    m = results["machine"]
    lines = [
        "# Training throughput: keraslm vs keras-hub",
        "",
        f"`{command}`",
        "",
        f"{m['date']} · {m.get('cpu_model', m['processor'])} · "
        f"{m['cpu_count']} CPUs (load "
        f"average {m['load_average_1m_at_start']:.1f} at start, "
        f"{results['load_average_1m_at_end']:.1f} at end) · TF {m['tensorflow']}"
        f" · Keras {m['keras']} · keras-hub {m['keras_hub']} · float32",
        "",
        "Shape: vocabulary {vocabulary_size}, sequence {sequence_length}, hidden "
        "{hidden_dim}, {num_layers} layers, {num_heads} heads, intermediate "
        "{intermediate_dim}, batch {batch_size}, dropout 0, AdamW."
        .format(**vars(arguments)),
        f"Parameters: keraslm {results['parameters']['keraslm']:,}, keras-hub "
        f"{results['parameters']['keras_hub']:,}.",
        "",
        f"Measured peak: {results['matmul_peak_gflops']:.1f} GFLOP/s "
        f"(median of {arguments.matmul_size}^3 float32 `tf.matmul` runs interleaved "
        f"with the training steps; best {results['matmul_peak_gflops_best']:.1f}).",
        "MFU = tokens/s x (6N + 12·L·d·T) / peak: the median step against the "
        "median peak, and (best) the fastest step against the best peak.",
        "",
        "Each library with its own loss (keraslm: "
        "`masked_sparse_categorical_crossentropy`, as `keraslm.train`; "
        "keras-hub: Keras' `SparseCategoricalCrossentropy`, as "
        "`GPT2CausalLM.compile`), then keras-hub's model with keraslm's loss "
        "(the model-only comparison):",
        "",
        "| XLA | keraslm tokens/s | keras-hub tokens/s | ratio (medians) "
        "| ratio (paired) | ratio (CPU time) | keraslm MFU (best) "
        "| keras-hub MFU (best) | keras-hub + keraslm's loss, tokens/s (MFU) "
        "| same loss: ratio (paired) | matmul GFLOP/s in this rotation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, entry in results["training"].items():
        ours, peer = entry["keraslm"], entry["keras_hub"]
        same = entry["same_loss"]
        lines.append(
            f"| {key.removeprefix('xla_')} "
            f"| {ours['per_second']:,.0f} (best {ours['per_second_best']:,.0f}) "
            f"| {peer['per_second']:,.0f} (best {peer['per_second_best']:,.0f}) "
            f"| {entry['ratio']:.2f}x | {entry['paired_ratio']:.2f}x "
            f"| {entry['cpu_ratio']:.2f}x "
            f"| {ours['mfu']:.0%} ({ours['mfu_best']:.0%}) "
            f"| {peer['mfu']:.0%} ({peer['mfu_best']:.0%}) "
            f"| {same['peer']['per_second']:,.0f} ({same['peer']['mfu']:.0%}) "
            f"| {same['ratio']:.2f}x ({same['paired_ratio']:.2f}x) "
            f"| {entry['matmul_gflops']:.0f} |")
    versus = results["fastest_versus_peer_modes"]
    if len(versus["ratios"]) > 1:
        lines += [
            "",
            f"keraslm in its fastest mode ({versus['keraslm_mode'].removeprefix('xla_')}, "
            f"{versus['keraslm_per_second']:,.0f} tokens/s) against keras-hub in "
            "each mode (medians of different rotations; `off` is what Keras "
            "picks on a CPU-only machine when `jit_compile` is left at \"auto\"):",
            "",
            "| keras-hub mode | keras-hub tokens/s | keraslm / keras-hub "
            "| keras-hub + keraslm's loss, tokens/s | keraslm / that |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, ratio in versus["ratios"].items():
            peer_rate = results["training"][key]["keras_hub"]["per_second"]
            same_rate = results["training"][key]["same_loss"]["peer"]["per_second"]
            lines.append(f"| {key.removeprefix('xla_')} | {peer_rate:,.0f} "
                         f"| {ratio:.2f}x | {same_rate:,.0f} "
                         f"| {versus['keraslm_per_second'] / same_rate:.2f}x |")
    if "loss" in results:
        loss = results["loss"]
        lines += [
            "",
            "The loss alone, forward + backward on logits of shape "
            f"{tuple(loss['shape'])} (a `tf.function`, not XLA-compiled as a "
            "whole):",
            "",
            "| loss | ms | best |",
            "|---|---:|---:|",
        ]
        for name, label in (("keraslm", "keraslm masked_sparse_categorical_crossentropy"),
                            ("keras", "keras SparseCategoricalCrossentropy")):
            lines.append(f"| {label} | {1000 / loss[name]['per_second']:.1f} "
                         f"| {1000 / loss[name]['per_second_best']:.1f} |")
        lines.append(f"| ratio keras / keraslm (medians / paired) | "
                     f"{loss['ratio']:.2f}x | {loss['paired_ratio']:.2f}x |")
    if "lstm" in results:
        lstm = results["lstm"]
        lines += [
            "",
            f"LSTM LM (embedding {lstm['shape']['hidden_dim']}, "
            f"{lstm['shape']['units']} units, 1 layer, XLA on; each with its "
            "own loss, then Keras' model with keraslm's loss):",
            "",
            "| model | tokens/s | best | tokens per CPU-second | parameters |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, label in (("keraslm", "keraslm.models.lstm_lm"),
                            ("keras", "keras Embedding->LSTM->Dense")):
            lines.append(
                f"| {label} | {lstm[name]['per_second']:,.0f} "
                f"| {lstm[name]['per_second_best']:,.0f} "
                f"| {lstm[name]['per_cpu_second']:,.0f} "
                f"| {lstm[name]['parameters']:,} |")
        same = lstm["same_loss"]
        lines.append(
            f"| keras Embedding->LSTM->Dense + keraslm's loss "
            f"| {same['peer']['per_second']:,.0f} "
            f"| {same['peer']['per_second_best']:,.0f} "
            f"| {same['peer']['per_cpu_second']:,.0f} "
            f"| {lstm['keras']['parameters']:,} |")
        lines.append(f"| ratio (medians / paired / CPU time) | "
                     f"{lstm['ratio']:.2f}x | {lstm['paired_ratio']:.2f}x | "
                     f"{lstm['cpu_ratio']:.2f}x | |")
        lines.append(f"| same loss: ratio (medians / paired / CPU time) | "
                     f"{same['ratio']:.2f}x | {same['paired_ratio']:.2f}x | "
                     f"{same['cpu_ratio']:.2f}x | |")
    if "generation" in results:
        generation = results["generation"]
        setup = generation["setup"]
        lines += [
            "",
            f"Cached greedy generation (batch 1, {setup['prompt_length']}-token "
            f"prompt, {setup['new_tokens']} new tokens):",
            "",
            "| model | new tokens/s | best | tokens per CPU-second |",
            "|---|---:|---:|---:|",
        ]
        for name, label in (
                ("keraslm", "keraslm.generation.generate_ids (TransformerLM)"),
                ("keras_hub", "keras_hub GPT2CausalLM.generate")):
            lines.append(
                f"| {label} | {generation[name]['per_second']:,.1f} "
                f"| {generation[name]['per_second_best']:,.1f} "
                f"| {generation[name]['per_cpu_second']:,.1f} |")
        lines.append(f"| ratio (medians / paired / CPU time) | "
                     f"{generation['ratio']:.2f}x | {generation['paired_ratio']:.2f}x "
                     f"| {generation['cpu_ratio']:.2f}x |")
    lines += [
        "",
        "Method: both models live in one process; each comparison alternates "
        f"repetitions ({arguments.repeats} x {arguments.steps} steps, order "
        "reversed every repetition, the matmul timed in the same rotation) and "
        "reports medians, so the load from other jobs on this shared 2-core "
        "machine falls on ours and the peer alike. Absolute figures move with "
        "that load (single steps ranged over 2x within one run); the ratios are "
        "the stable part, and of those the paired ratio (median over "
        "repetitions of the two neighbouring runs) and the CPU-time ratio "
        "(process CPU seconds per step, which barely moves with load) are the "
        "most robust. `best` is the fastest repetition, the closest to an idle "
        "machine.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None):
    import sys

    arguments = parse_arguments(argv)
    command = ".venv/bin/python benchmarks/train_throughput.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    results = {"command": command.strip(), "machine": machine(),
               "arguments": vars(arguments), "training": {}}
    ours, peer = measure_training(arguments, results)
    measure_loss(arguments, results)
    if not arguments.no_lstm:
        measure_lstm(arguments, results)
    if not arguments.no_generate:
        measure_generation(arguments, results, ours, peer)
    results["load_average_1m_at_end"] = os.getloadavg()[0]
    output = pathlib.Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(output.with_suffix(".md"), arguments, results,
                   results["command"])
    print(output.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
