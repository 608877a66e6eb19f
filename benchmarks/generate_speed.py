"""Generation speed of keraslm's Transformer LM against keras-hub's GPT-2.

Measures new tokens per second, in one process on the TensorFlow backend
(float32, CPU), for a 16-token prompt continued by 128 new tokens (by
default), every row generating all of them (no stop ids on either side):

- greedy, batch 1;
- greedy, batch 8 (eight different prompts of the same length);
- beam search with 4 beams, batch 1;

for `keraslm.generation.generate_ids` with `keraslm.models.transformer_lm`
(an XLA `while_loop` over the key/value-cached step for greedy; beam search
is a Python loop over the compiled step) and for
`keras_hub.models.GPT2CausalLM(backbone=GPT2Backbone(...), preprocessor=None)
.generate` fed `{"token_ids", "padding_mask"}` directly, with its "greedy"
sampler and `keras_hub.samplers.BeamSampler(num_beams=4)`,
`stop_token_ids=None`. keras-hub is measured twice: compiled as by default
(`jit_compile="auto"`, which Keras turns into `False` on a machine without
a GPU, so its `tf.function` runs as a TensorFlow graph) and with
`jit_compile=True` (XLA).

Both models have the same shape (vocabulary 8192, hidden 256, 4 layers, 4
heads, intermediate 1024, max length prompt + new tokens) and the same
random weights (keras-hub's, copied into keraslm's fused query/key/value
kernels); nothing is downloaded. keraslm's feed-forward uses the exact GELU
and GPT-2 the tanh approximation, so the greedy ids of the two agree for a
while and may then part; the table says how many agree.

Each configuration is warmed up (compiled) first; then the repetitions
alternate between the libraries (the order reversed every repetition) and
medians are reported, with the ratio keraslm / keras-hub, the paired ratio
(median over repetitions of neighbouring runs) and the spread (min-max).

Unless `--no-profile`, it also breaks keraslm's time per token down: the
fixed cost per call (the prompt's prefill, which `generate_ids` runs
eagerly, against the same prefill compiled), the XLA loop's time per
token, and inside it the model step alone, its decoder blocks, the cache
update, the output head and the greedy pick, each in an XLA loop of its
own, against the time to read every weight once (batch-1 decoding reads
all of them per token); keras-hub's fixed and per-token costs come from
generating 1 and all new tokens; beam search is timed by parts (the
compiled step, the cache reordering, the NumPy scoring).

Usage:

    .venv/bin/python benchmarks/generate_speed.py            # full run
    .venv/bin/python benchmarks/generate_speed.py --quick    # smoke run

Writes benchmarks/results/generate_speed.json and .md (use `--output` to
write elsewhere, e.g. for `--quick` runs).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import subprocess
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]

SERIES = ("keraslm", "keras_hub", "keras_hub_xla")
LABELS = {
    "keraslm": "keraslm `generate_ids`",
    "keras_hub": "keras-hub `generate` (default: graph, no XLA on CPU)",
    "keras_hub_xla": "keras-hub `generate` (`jit_compile=True`)",
}


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabulary-size", type=int, default=8192)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--intermediate-dim", type=int, default=1024)
    parser.add_argument("--prompt-length", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8,
                        help="rows of the batched greedy configuration")
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=9,
                        help="interleaved repetitions per configuration")
    parser.add_argument("--profile-repeats", type=int, default=7)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="3 repetitions, 32 new tokens")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results"
                                                / "generate_speed"),
                        help="path prefix of the .json and .md results")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.repeats = min(arguments.repeats, 3)
        arguments.profile_repeats = min(arguments.profile_repeats, 3)
        arguments.new_tokens = min(arguments.new_tokens, 32)
    return arguments


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return 0.5 * (values[middle - 1] + values[middle])


def interleaved(functions, repeats):
    """Wall and CPU seconds per call of each (warmed-up) function.

    Each repetition calls every function once; the order reverses every
    repetition. CPU time is this process's (all threads).
    """
    names = list(functions)
    seconds = {name: {"wall": [], "cpu": []} for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            functions[name]()
            seconds[name]["wall"].append(time.perf_counter() - wall)
            seconds[name]["cpu"].append(time.process_time() - cpu)
    return seconds


def rates(seconds, tokens):
    wall, cpu = seconds["wall"], seconds["cpu"]
    return {"per_second": tokens / median(wall),
            "per_second_best": tokens / min(wall),
            "per_second_worst": tokens / max(wall),
            "per_cpu_second": tokens / median(cpu),
            "wall_seconds": wall, "cpu_seconds": cpu}


def ratios(seconds, ours, peer):
    """keraslm / peer speed: of the medians, paired, and of CPU time."""
    pairs = zip(seconds[ours]["wall"], seconds[peer]["wall"])
    return {"ratio": median(seconds[peer]["wall"]) / median(seconds[ours]["wall"]),
            "paired_ratio": median([p / o for o, p in pairs]),
            "cpu_ratio": median(seconds[peer]["cpu"]) / median(seconds[ours]["cpu"])}


def build_models(arguments):
    import keras
    import keras_hub

    import keraslm

    shape = dict(vocabulary_size=arguments.vocabulary_size,
                 num_layers=arguments.num_layers, num_heads=arguments.num_heads,
                 hidden_dim=arguments.hidden_dim,
                 intermediate_dim=arguments.intermediate_dim,
                 max_sequence_length=arguments.prompt_length + arguments.new_tokens,
                 dropout=0.0)
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(**shape)
    ours = keraslm.models.transformer_lm(**shape)
    copy_weights(backbone, ours)

    def peer(sampler, jit_compile):
        model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        model.compile(sampler=sampler, jit_compile=jit_compile)
        return model

    beam = lambda: keras_hub.samplers.BeamSampler(num_beams=arguments.num_beams)
    peers = {
        "greedy": {"keras_hub": peer("greedy", "auto"),
                   "keras_hub_xla": peer("greedy", True)},
        "beam": {"keras_hub": peer(beam(), "auto"),
                 "keras_hub_xla": peer(beam(), True)},
    }
    return ours, backbone, peers


def copy_weights(backbone, ours):
    """keras-hub's `GPT2Backbone` weights into keraslm's `TransformerLM`."""
    import numpy as np

    hub = {weight.path: np.asarray(weight.numpy()) for weight in backbone.weights}

    def source(path):
        layer, _, rest = path.partition("/")
        if path.startswith("final_layer_norm/"):
            return hub[path.replace("final_layer_norm", "layer_norm")]
        if rest.startswith("self_attention/qkv_"):
            kind = rest.rsplit("_", 1)[1]
            return np.stack([hub[f"{layer}/self_attention/{name}/{kind}"]
                             for name in ("query", "key", "value")],
                            axis=1 if kind == "kernel" else 0)
        if rest.startswith("self_attention/output_"):
            return hub[f"{layer}/self_attention/attention_output/"
                       f"{rest.rsplit('_', 1)[1]}"]
        if rest.startswith("feedforward/"):
            return hub[f"{layer}/" + rest.replace("feedforward/", "feedforward_")]
        return hub[path]

    for weight in ours.weights:
        value = source(weight.path)
        if tuple(value.shape) != tuple(weight.shape):
            raise ValueError(f"Shape mismatch copying {weight.path}: "
                             f"{value.shape} into {weight.shape}")
        weight.assign(value)


def prompts(arguments, rows, seed):
    import numpy as np

    # Ids from 1: id 0 is keraslm's padding id.
    return np.random.default_rng(seed).integers(
        1, arguments.vocabulary_size, (rows, arguments.prompt_length)).astype("int32")


def peer_inputs(batch, new_tokens):
    import numpy as np

    rows, length = batch.shape
    inputs = {"token_ids": np.zeros((rows, length + new_tokens), "int32"),
              "padding_mask": np.zeros((rows, length + new_tokens), "bool")}
    inputs["token_ids"][:, :length] = batch
    inputs["padding_mask"][:, :length] = True
    return inputs


def configurations(arguments, ours, peers):
    """`{name: (setup, {series: callable returning the new ids (rows, N)})}`."""
    import numpy as np

    import keraslm

    P, N = arguments.prompt_length, arguments.new_tokens

    def keraslm_call(batch, **options):
        ids = batch.tolist()
        return lambda: np.array(keraslm.generation.generate_ids(
            ours, ids, N, banned_ids=(), stop_ids=(), **options))

    def peer_call(model, batch):
        inputs = peer_inputs(batch, N)

        def call():
            output = model.generate(inputs, max_length=P + N, stop_token_ids=None)
            if not np.asarray(output["padding_mask"]).all():
                raise AssertionError("keras-hub stopped early")
            return np.asarray(output["token_ids"])[:, P:]

        return call

    single, several = prompts(arguments, 1, 2), prompts(arguments, arguments.batch_size, 3)
    result = {}
    for name, batch, sampler, options in (
            ("greedy_batch_1", single, "greedy", {}),
            (f"greedy_batch_{arguments.batch_size}", several, "greedy", {}),
            (f"beam_{arguments.num_beams}_batch_1", single, "beam",
             {"num_beams": arguments.num_beams, "length_penalty": 1.0})):
        functions = {"keraslm": keraslm_call(batch, **options)}
        for series, model in peers[sampler].items():
            functions[series] = peer_call(model, batch)
        setup = dict(batch=len(batch), prompt_length=P, new_tokens=N,
                     sampler="greedy" if sampler == "greedy"
                     else f"beam search, {arguments.num_beams} beams")
        result[name] = (setup, functions)
    return result


def agreement(outputs):
    """Per row, how many leading new ids keraslm and keras-hub share."""
    import numpy as np

    ours, peer = outputs["keraslm"], outputs["keras_hub"]
    same = []
    for a, b in zip(ours, peer):
        differ = np.flatnonzero(a != b)
        same.append(int(differ[0]) if len(differ) else len(a))
    return same


def measure_generation(arguments, results, ours, peers):
    for name, (setup, functions) in configurations(arguments, ours, peers).items():
        load = os.getloadavg()[0]
        start = time.perf_counter()
        outputs = {}
        for series, function in functions.items():  # compile + warm up
            outputs[series] = function()
            function()
        for series, output in outputs.items():
            expected = (setup["batch"], setup["new_tokens"])
            if output.shape != expected:
                raise AssertionError(f"{name}: {series} returned new ids of shape "
                                     f"{output.shape}, expected {expected}")
        warmup = time.perf_counter() - start
        seconds = interleaved(functions, arguments.repeats)
        tokens = setup["batch"] * setup["new_tokens"]
        entry = {"setup": setup, "warmup_seconds": warmup,
                 "load_average_1m_before": load,
                 "leading_ids_equal": agreement(outputs)}
        for series in functions:
            entry[series] = rates(seconds[series], tokens)
        entry["versus_keras_hub"] = ratios(seconds, "keraslm", "keras_hub")
        entry["versus_keras_hub_xla"] = ratios(seconds, "keraslm", "keras_hub_xla")
        results["generation"][name] = entry
        print(name, {series: round(entry[series]["per_second"], 1)
                     for series in functions},
              f"ratio {entry['versus_keras_hub']['ratio']:.2f}x", flush=True)


def xla_loop(body, *state):
    """An XLA `while_loop` running `body(i, *state) -> state` `n` times."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def run(n, *state):
        return tf.while_loop(lambda i, *s: i < n,
                             lambda i, *s: (i + 1,) + tuple(body(i, *s)),
                             (tf.constant(0),) + tuple(state))

    return run


def profile_greedy(arguments, ours, peers, batch_size):
    """Milliseconds per call and per token of the parts of greedy decoding."""
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from keraslm.generation.api import _cache_length
    from keraslm.generation.decoders import decoder_for
    from keraslm.generation.loop import _compiled_loop

    P, N = arguments.prompt_length, arguments.new_tokens
    batch = prompts(arguments, batch_size, 2 if batch_size == 1 else 3)
    total = _cache_length(P, N)
    spent = {"prefill": [], "loop": []}
    decoder = decoder_for(ours)
    prefill_xla_function = tf.function(
        lambda ids: decoder.prefill(ids, None, total), jit_compile=True)
    prefill_xla = lambda: prefill_xla_function(tf.constant(batch))[0].numpy()
    logits, state = decoder.prefill(batch, None, total)
    loop = _compiled_loop(ours, decoder, "greedy", (), (), False, 0)
    settings = (tf.constant(1.0), tf.constant(40), tf.constant(0.9), tf.constant(0),
                tf.constant(1.0))
    sequence = np.zeros((batch_size, total), "int32")
    sequence[:, :P] = batch

    def decode_loop(steps):
        carry = (tf.constant(0), logits, state, tf.constant(sequence),
                 tf.zeros((batch_size, 1), tf.bool),
                 tf.zeros([batch_size], tf.int32), tf.zeros([batch_size], tf.bool))
        return lambda: loop(carry, tf.constant(steps), tf.constant(steps),
                            tf.constant(P), tf.zeros([batch_size], tf.int32),
                            settings)[3].numpy()

    # Parts of the step, each alone in an XLA loop of `steps` iterations;
    # everything depends on the loop variable, so nothing is hoisted.
    steps = N - 1
    (cache,) = state
    token = tf.constant(batch[:, -1])
    hidden = tf.random.normal((batch_size, 1, arguments.hidden_dim))

    def step_body(i, cache, total_logits):
        logits, (cache,) = decoder.step(token, (cache,), P + i)
        return cache, total_logits + logits[:, :1]

    def blocks_body(i, cache, total):
        caches, x = [], hidden
        for index, block in enumerate(ours.transformer_layers):
            x, layer_cache = block(x, self_attention_cache=cache[:, index],
                                   self_attention_cache_update_index=P + i)
            caches.append(layer_cache)
        return tf.stack(caches, axis=1), total + x[:, :, :1]

    def cache_body(i, cache, k):
        caches = []
        for index in range(ours.num_layers):
            layer = cache[:, index]
            start = [0, P + i, 0, 0]
            keys = ops.slice_update(layer[:, 0], start, k)
            values = ops.slice_update(layer[:, 1], start, k)
            caches.append(tf.stack((keys, values), axis=1))
        return tf.stack(caches, axis=1), k + 1.0

    def head_body(i, x, total_logits):
        y = ours.final_layer_norm(x)
        logits = ours.token_embedding(y, reverse=True)
        return x + 1e-6, total_logits + logits[:, :, :1]

    def pick_body(i, logits, sequence):
        token = tf.argmax(logits, axis=-1, output_type=tf.int32)
        rows = tf.range(batch_size)
        sequence = tf.tensor_scatter_nd_update(
            sequence, tf.stack([rows, tf.fill([batch_size], P + i)], -1), token)
        return logits + 1e-6, sequence

    # The weights are variables: read at every call, never constant-folded.
    read_weights_function = tf.function(
        lambda: tf.add_n([tf.reduce_sum(w) for w in ours.weights]), jit_compile=True)
    reads = 20

    def read_weights():
        for _ in range(reads):
            read_weights_function().numpy()

    # The CPU's matmul speed on a large product, for scale.
    size = 1024
    left, right = tf.random.normal((size, size)), tf.random.normal((size, size))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(left, right)), jit_compile=True)
    products = 10

    def matmul():
        for _ in range(products):
            product().numpy()

    rows, _, _, _, heads, head_dim = cache.shape
    parts = {
        "step": (step_body, (cache, tf.zeros((batch_size, 1)))),
        "blocks": (blocks_body, (cache, tf.zeros((batch_size, 1, 1)))),
        "cache_update": (cache_body, (cache, tf.zeros((rows, 1, heads, head_dim)))),
        "head": (head_body, (hidden, tf.zeros((batch_size, 1, 1)))),
        "greedy_pick": (pick_body, (tf.cast(logits, tf.float32),
                                    tf.constant(sequence))),
    }
    functions = {
        "generate_ids": timed_generate_ids(ours, batch, N, spent),
        "prefill_xla": prefill_xla,
        "loop_all": decode_loop(N),
        "loop_one": decode_loop(1),
        "read_weights": read_weights,
        "matmul": matmul,
    }
    for name, (body, initial) in parts.items():
        run = xla_loop(body, *initial)
        functions[name] = (lambda run=run, initial=initial:
                           [t.numpy() for t in run(tf.constant(steps), *initial)[1:]])
    peer = peers["greedy"]
    for series, model in peer.items():
        for new in (N, 1):
            inputs = peer_inputs(batch, new)
            functions[f"{series}_{new}"] = (
                lambda model=model, inputs=inputs, new=new: model.generate(
                    inputs, max_length=P + new, stop_token_ids=None))
    for function in functions.values():
        function()
        function()
    for values in spent.values():
        del values[:]
    seconds = interleaved(functions, arguments.profile_repeats)
    ms = {name: 1000 * median(value["wall"]) for name, value in seconds.items()}
    # The parts of the same `generate_ids` calls (medians over repetitions).
    call = {name: 1000 * median(values) for name, values in spent.items()}
    call["rest"] = 1000 * median([total - prefill - loop for total, prefill, loop in zip(
        seconds["generate_ids"]["wall"], spent["prefill"], spent["loop"])])
    per_token = {name: ms[name] / steps for name in parts}
    per_token["loop"] = (ms["loop_all"] - ms["loop_one"]) / steps
    per_token["read_weights"] = ms["read_weights"] / reads
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in ours.weights)
    result = {
        "batch": batch_size,
        "ms_per_call": ms,
        "ms_per_decoding_step": per_token,
        "generate_ids_ms": ms["generate_ids"],
        "generate_ids_parts_ms": call,
        "prefill_eager_ms": call["prefill"],
        "prefill_xla_ms": ms["prefill_xla"],
        "loop_ms": ms["loop_all"],
        "in_call_loop_ms": call["loop"],
        "outside_loop_ms": call["rest"],
        "weight_bytes": weight_bytes,
        "read_weights_gb_per_second": weight_bytes / per_token["read_weights"] / 1e6,
        "matmul_gflops": 2 * size**3 * products / ms["matmul"] / 1e6,
        # Multiply-adds of one row's step: every weight matrix once (the
        # position table is looked up, not multiplied); attention is small.
        "step_flops_per_row": 2 * sum(
            int(np.prod(w.shape)) for w in ours.weights
            if len(w.shape) > 1 and "position" not in w.path),
        "keras_hub": {},
    }
    for series in peer:
        per = (ms[f"{series}_{N}"] - ms[f"{series}_1"]) / (N - 1)
        result["keras_hub"][series] = {"ms_per_call": ms[f"{series}_{N}"],
                                       "ms_per_token": per,
                                       "fixed_ms": ms[f"{series}_{N}"] - N * per}
    print(f"profile batch {batch_size}", {k: round(v, 2) for k, v in per_token.items()},
          flush=True)
    return result


def timed_generate_ids(model, batch, new_tokens, spent):
    """`generate_ids` (greedy) with the time in its prefill and in its XLA
    loop appended to `spent["prefill"]` and `spent["loop"]` at each call."""
    import keraslm
    from keraslm.generation import decoders
    from keraslm.generation import loop as loops

    decoder = decoders.decoder_for(model)

    def timed(name, function):
        return _timed(spent, name, function, each_call=True)

    class Timed(decoders.CacheDecoder):
        prefill = staticmethod(timed("prefill", decoder.prefill))

    def compiled_loop(*args):
        return timed("loop", original_loop(*args))

    original_decoder_for, original_loop = decoders.decoder_for, loops._compiled_loop

    def run():
        # `_decode` looks both up when called: time the parts of this call.
        decoders.decoder_for = lambda model: Timed(model)
        api = keraslm.generation.api
        api._compiled_loop = compiled_loop
        try:
            return keraslm.generation.generate_ids(model, batch.tolist(), new_tokens,
                                                   banned_ids=())
        finally:
            decoders.decoder_for = original_decoder_for
            api._compiled_loop = original_loop

    return run


def profile_beam(arguments, ours):
    """Seconds in the parts of keraslm's beam search (one 1-row call)."""
    from keraslm.generation.api import _cache_length, _left_pad
    from keraslm.generation.beam import beam_search
    from keraslm.generation.decoders import decoder_for
    from keraslm.generation.loop import _compiled_step

    P, N = arguments.prompt_length, arguments.new_tokens
    batch = prompts(arguments, 1, 2)
    decoder = decoder_for(ours)
    step = _compiled_step(ours, decoder)
    spent = {"prefill": [], "step": [], "reorder": []}

    def timed(name, function):
        return _timed(spent, name, function, each_call=False)

    class Timed:
        compiled = decoder.compiled
        prefill = staticmethod(timed("prefill", decoder.prefill))
        reorder = staticmethod(timed("reorder", decoder.reorder))

    timed_step = timed("step", step)
    totals = []
    for repeat in range(arguments.profile_repeats + 1):
        for values in spent.values():
            values.append(0.0)
        padded, padding = _left_pad(batch.tolist())
        start = time.perf_counter()
        beam_search(Timed, timed_step, batch.tolist(), padded, padding, N,
                    _cache_length(P, N), num_beams=arguments.num_beams,
                    length_penalty=1.0, early_stopping=True, stop_ids=(),
                    banned_ids=(), repetition_penalty=1.0, no_repeat_ngram_size=0,
                    stop_condition=None)
        totals.append(time.perf_counter() - start)
    # The first call is the warm-up.
    ms = {name: 1000 * median(values[1:]) for name, values in spent.items()}
    ms["total"] = 1000 * median(totals[1:])
    ms["numpy_and_python"] = ms["total"] - ms["prefill"] - ms["step"] - ms["reorder"]
    result = {"ms_per_call": ms,
              "ms_per_token": {name: value / N for name, value in ms.items()
                               if name != "prefill"},
              "steps": N - 1}
    print("profile beam", {k: round(v, 2) for k, v in result["ms_per_token"].items()},
          flush=True)
    return result


def _timed(spent, name, function, each_call):
    """`function`, timed until its results are computed: each call's
    seconds appended to `spent[name]` (`each_call`), or added to its last
    entry (several calls in one measurement)."""
    def call(*args):
        start = time.perf_counter()
        out = function(*args)
        # Results are used as NumPy (logits) or fed on (state): wait for them.
        for part in _leaves(out):
            if hasattr(part, "numpy"):
                part.numpy()
        seconds = time.perf_counter() - start
        if each_call:
            spent[name].append(seconds)
        else:
            spent[name][-1] += seconds
        return out
    return call


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def machine():
    import keras
    import keras_hub
    import numpy as np
    import tensorflow as tf

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                                  text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

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
        "numpy": np.__version__,
        "backend": keras.backend.backend(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_modified_files": git("status", "--porcelain", "--untracked-files=no"),
        "load_average_at_start": list(os.getloadavg()),
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


def analysis(arguments, results):
    """The paragraphs under the profile tables, from the measured numbers."""
    N = arguments.new_tokens
    first = next(iter(results["generation"].values()))
    one = results["profile"]["greedy"][0]
    step = one["ms_per_decoding_step"]
    hub = one["keras_hub"]["keras_hub"]
    hub_xla = one["keras_hub"]["keras_hub_xla"]
    compiled_prefill = one["generate_ids_ms"] - one["prefill_eager_ms"] + one["prefill_xla_ms"]
    floor_call = one["prefill_xla_ms"] + (N - 1) * step["read_weights"]
    lines = [
        "Reading the batch-1 column: a `generate_ids` call is "
        f"{one['generate_ids_ms']:.0f} ms, of which "
        f"{one['prefill_eager_ms']:.0f} ms "
        f"({one['prefill_eager_ms'] / one['generate_ids_ms']:.0%}) is the prompt's "
        "prefill, run eagerly op by op (`CacheDecoder.prefill` is not "
        f"compiled); compiled with XLA the same prefill takes "
        f"{one['prefill_xla_ms']:.0f} ms. keras-hub compiles its prefill into "
        f"`generate` (its fixed cost is {hub['fixed_ms']:.0f} ms). With a "
        f"compiled prefill the call would take about {compiled_prefill:.0f} ms: "
        f"{hub['ms_per_call'] / compiled_prefill:.1f}x keras-hub's default "
        f"{hub['ms_per_call']:.0f} ms per call in this profile. (In this "
        f"profile's rotation keraslm's call is "
        f"{hub['ms_per_call'] / one['generate_ids_ms']:.2f}x keras-hub's, against "
        f"{first['versus_keras_hub']['ratio']:.2f}x (medians) and "
        f"{first['versus_keras_hub']['cpu_ratio']:.2f}x (CPU time) in the table "
        "above: the load moved in between; the CPU-time ratio moves least.)",
        "",
        f"Per token, keraslm's XLA loop spends {step['loop']:.2f} ms (keras-hub: "
        f"{hub['ms_per_token']:.2f} ms as a graph, {hub_xla['ms_per_token']:.2f} ms "
        f"with XLA: {hub['ms_per_token'] / step['loop']:.1f}x and "
        f"{hub_xla['ms_per_token'] / step['loop']:.1f}x keraslm's per-token time"
        + ("; so per token the two XLA loops are about as fast, keraslm's lead "
           "over keras-hub's default is XLA, which keras-hub leaves off on a "
           "CPU, and against keras-hub with XLA it loses on the eager prefill). "
           if 0.8 <= hub_xla["ms_per_token"] / step["loop"] <= 1.25 else "). ")
        + ("Nearly all of it is the model step" if step["step"] >= 0.8 * step["loop"]
           else "The model step is") + f" ({step['step']:.2f} ms alone); the "
        f"sampler and writing the id cost {step['greedy_pick']:.2f} ms, the cache "
        f"update {step['cache_update']:.2f} ms and the output head "
        f"{step['head']:.2f} ms, the decoder blocks (attention and MLP matmuls) "
        "most of the rest. "
        f"Reading the {one['weight_bytes'] / 1e6:.0f} MB of weights once takes "
        f"{step['read_weights']:.2f} ms on this machine "
        f"({one['read_weights_gb_per_second']:.0f} GB/s), and a batch-1 step "
        "has to read all of them: even a step at that floor, with the "
        f"compiled prefill, would make a call of about {floor_call:.0f} ms, "
        f"{hub['ms_per_call'] / floor_call:.1f}x keras-hub. The 5x target at "
        "batch 1 is "
        + ("within that bound." if hub["ms_per_call"] / floor_call >= 5 else
           "beyond that bound on this machine: what is left to take is the "
           "eager prefill (a fixed cost per call)"
           + (f" and the gap between the step ({step['loop']:.2f} ms) and the "
              f"weight-read floor ({step['read_weights']:.2f} ms)."
              if step["loop"] > 1.2 * step["read_weights"] else
              "; the step is already within 20% of the weight-read floor.")),
    ]
    if len(results["profile"]["greedy"]) > 1:
        eight = results["profile"]["greedy"][1]
        lines += [
            "",
            f"At batch {eight['batch']} a step costs "
            f"{eight['ms_per_decoding_step']['loop']:.2f} ms "
            f"({eight['ms_per_decoding_step']['loop'] / step['loop']:.1f}x batch "
            f"1 for {eight['batch']}x the rows; keras-hub "
            f"{eight['keras_hub']['keras_hub']['ms_per_token']:.2f} ms, with XLA "
            f"{eight['keras_hub']['keras_hub_xla']['ms_per_token']:.2f} ms): the "
            "weights are read once for all rows, so memory no longer sets "
            "it: the step's matmuls (2 FLOPs per weight per row) run at "
            f"{eight['step_flops_per_row'] * eight['batch'] / eight['ms_per_decoding_step']['loop'] / 1e6:.0f}"
            f" GFLOP/s, against {eight['matmul_gflops']:.0f} GFLOP/s for a "
            "1024 x 1024 XLA matmul in the same rotation: XLA's CPU matmuls "
            "of a few rows are far from the machine's peak, in both libraries. "
            f"The cache update alone is "
            f"{eight['ms_per_decoding_step']['cache_update']:.2f} ms of the step "
            f"here ({step['cache_update']:.2f} ms at batch 1): it grows with the "
            "cache (batch x length), since each step slices every layer's "
            "keys and values out of the one stacked cache tensor, updates "
            "them and stacks them back.",
        ]
    beam = results["profile"].get("beam")
    if beam:
        ms = beam["ms_per_token"]
        beam_entry = results["generation"][f"beam_{arguments.num_beams}_batch_1"]
        xla_ms = 1000 / beam_entry["keras_hub_xla"]["per_second"]
        lines += [
            "",
            f"Beam search is a Python loop: per new token {ms['total']:.1f} ms, "
            f"of which the compiled step (a `tf.function` graph, not XLA) is "
            f"{ms['step']:.1f} ms, reordering the cache along the beams (eager "
            f"`ops.take`) {ms['reorder']:.1f} ms and the NumPy scoring "
            f"(processors and log-softmax per beam, an argsort over "
            f"{arguments.num_beams} x {arguments.vocabulary_size} candidates) "
            f"{ms['numpy_and_python']:.1f} ms; keras-hub's BeamSampler, one "
            f"XLA `while_loop`, takes {xla_ms:.1f} ms per token with XLA.",
        ]
    return lines


def write_markdown(path, arguments, results):
    m = results["machine"]
    start, end = m["load_average_at_start"], results["load_average_at_end"]
    lines = [
        "# Generation speed: keraslm vs keras-hub",
        "",
        f"`{results['command']}`",
        "",
        f"{m['date']} · {m.get('cpu_model', m['processor'])} · {m['cpu_count']} "
        f"CPUs, no GPU · load average (1/5/15 min) "
        f"{start[0]:.1f}/{start[1]:.1f}/{start[2]:.1f} at start, "
        f"{end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f} at end: the machine is shared "
        f"with other jobs · TF {m['tensorflow']} · Keras {m['keras']} · "
        f"keras-hub {m['keras_hub']} · float32 · keraslm at {m['git_commit']}"
        f"{' (with uncommitted edits by others in the checkout)' if m['git_modified_files'] else ''}"
        f" · {results['seconds']:.0f} s in all",
        "",
        "Shape: vocabulary {vocabulary_size}, hidden {hidden_dim}, {num_layers} "
        "layers, {num_heads} heads, intermediate {intermediate_dim}, max length "
        "{maximum}; the same random weights on both sides (keras-hub's, copied "
        "into keraslm's). Prompt {prompt_length} ids, {new_tokens} new ids per "
        "row, no stop ids (both sides checked to return all of them)."
        .format(maximum=arguments.prompt_length + arguments.new_tokens,
                **vars(arguments)),
        "",
        "New tokens/s (all rows), median of "
        f"{arguments.repeats} interleaved repetitions (min-max in brackets):",
        "",
        "| configuration | " + " | ".join(LABELS[s] for s in SERIES)
        + " | keraslm / keras-hub (medians · paired · CPU) "
        "| keraslm / keras-hub XLA (medians · paired) | greedy ids equal to keras-hub's |",
        "|---|" + "---:|" * (len(SERIES) + 3),
    ]
    for name, entry in results["generation"].items():
        cells = [f"{entry[s]['per_second']:,.0f} ({entry[s]['per_second_worst']:,.0f}"
                 f"-{entry[s]['per_second_best']:,.0f})" for s in SERIES]
        hub, xla = entry["versus_keras_hub"], entry["versus_keras_hub_xla"]
        same = entry["leading_ids_equal"]
        lines.append(
            f"| {entry['setup']['sampler']}, batch {entry['setup']['batch']} | "
            + " | ".join(cells)
            + f" | **{hub['ratio']:.2f}x** · {hub['paired_ratio']:.2f}x · "
            f"{hub['cpu_ratio']:.2f}x | {xla['ratio']:.2f}x · {xla['paired_ratio']:.2f}x"
            f" | first {min(same)}-{max(same)} of {entry['setup']['new_tokens']} |")
    first = next(iter(results["generation"].values()))
    lines += [
        "",
        f"Target (issue 15): keraslm >= 5x keras-hub at batch 1. Measured: "
        f"{first['versus_keras_hub']['ratio']:.2f}x against keras-hub as it "
        f"compiles by default on this CPU-only machine, "
        f"{first['versus_keras_hub_xla']['ratio']:.2f}x against keras-hub with "
        "XLA. "
        + ("Met." if first["versus_keras_hub"]["ratio"] >= 5 else
           "Not met; where the time goes is below."),
    ]
    profile = results.get("profile")
    if profile:
        lines += ["", "## Where keraslm's time goes", ""]
        lines += [
            "Milliseconds, medians of "
            f"{arguments.profile_repeats} interleaved repetitions. The parts of "
            "a decoding step are each run alone in an XLA `while_loop` of "
            f"{arguments.new_tokens - 1} iterations (the number of steps one "
            "call runs) and divided by it; `read every weight once` is an "
            "XLA `reduce_sum` over all the model's weights, called on its "
            "own: the memory traffic a batch-1 step cannot avoid.",
            "",
            "| | " + " | ".join(f"greedy, batch {p['batch']}" for p in profile["greedy"])
            + " |",
            "|---|" + "---:|" * len(profile["greedy"]),
        ]

        def row(label, values):
            lines.append(f"| {label} | " + " | ".join(values) + " |")

        greedy = profile["greedy"]
        row("`generate_ids`, one call", [f"{p['generate_ids_ms']:.1f}" for p in greedy])
        row("· prefill of the prompt, eager (as `generate_ids` runs it)",
            [f"{p['prefill_eager_ms']:.1f}" for p in greedy])
        row("· the XLA decoding loop (`_compiled_loop`), all new ids",
            [f"{p['in_call_loop_ms']:.1f}" for p in greedy])
        row("· the rest (argument checks, padding, tensors in and out)",
            [f"{p['outside_loop_ms']:.1f}" for p in greedy])
        row("the same prefill, XLA-compiled (for comparison)",
            [f"{p['prefill_xla_ms']:.1f}" for p in greedy])
        row("**per decoding step**: the loop (slope between 1 and all new ids)",
            [f"**{p['ms_per_decoding_step']['loop']:.2f}**" for p in greedy])
        for key, label in (
                ("step", "· model step alone (`decoder.step`: embedding, blocks, head)"),
                ("blocks", "· · the 4 decoder blocks (attention with cache update, MLP)"),
                ("cache_update", "· · the cache update alone (slice, `slice_update`, stack)"),
                ("head", "· · final layer norm + tied output head (hidden x vocabulary)"),
                ("greedy_pick", "· argmax + writing the id (the sampler)"),
                ("read_weights", "read every weight once (one XLA call; the floor at batch 1)")):
            row(label, [f"{p['ms_per_decoding_step'][key]:.2f}" for p in greedy])
        row("memory bandwidth that implies (GB/s)",
            [f"{p['read_weights_gb_per_second']:.1f}" for p in greedy])
        for series in ("keras_hub", "keras_hub_xla"):
            name = "keras-hub" + (" XLA" if series.endswith("xla") else "")
            row(f"{name}: per token (slope between 1 and all new ids)",
                [f"{p['keras_hub'][series]['ms_per_token']:.2f}" for p in greedy])
            row(f"{name}: fixed cost per call",
                [f"{p['keras_hub'][series]['fixed_ms']:.1f}" for p in greedy])
        beam = profile.get("beam")
        if beam:
            ms, per = beam["ms_per_call"], beam["ms_per_token"]
            lines += [
                "",
                f"Beam search ({arguments.num_beams} beams, batch 1), one call "
                "of `keraslm.generation.beam.beam_search` with its parts timed "
                "(each waits for its result):",
                "",
                "| part | ms per call | ms per new token |",
                "|---|---:|---:|",
                f"| total | {ms['total']:.0f} | {per['total']:.2f} |",
                f"| prefill (eager) | {ms['prefill']:.0f} | |",
                f"| compiled step (`tf.function` graph, {arguments.num_beams} rows) "
                f"| {ms['step']:.0f} | {per['step']:.2f} |",
                f"| cache reorder (`ops.take`, eager) | {ms['reorder']:.0f} "
                f"| {per['reorder']:.2f} |",
                f"| NumPy scoring and Python (processors, log-softmax, argsort) "
                f"| {ms['numpy_and_python']:.0f} | {per['numpy_and_python']:.2f} |",
            ]
        lines += ["", *analysis(arguments, results)]
    lines += [
        "",
        "Method: all models live in one process; each configuration is run "
        "twice first (compilation), then the repetitions alternate between "
        "keraslm and keras-hub (order reversed every repetition) so that the "
        "load from other jobs on this shared 2-core machine falls on both "
        "alike. Absolute figures move with that load; the ratios are the "
        "stable part, the paired ratio (median over repetitions of "
        "neighbouring runs) and the CPU-time ratio most of all. keras-hub's "
        "default compile (`jit_compile=\"auto\"`) is what a user gets; on a "
        "machine without a GPU Keras makes it `False`, so its `generate` runs "
        "as a TensorFlow graph; the XLA column forces `jit_compile=True`.",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None):
    import sys

    arguments = parse_arguments(argv)
    command = ".venv/bin/python benchmarks/generate_speed.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    results = {"command": command.strip(), "machine": machine(),
               "arguments": vars(arguments), "generation": {}}
    ours, backbone, peers = build_models(arguments)
    results["parameters"] = {"keraslm": ours.count_params(),
                             "keras_hub": backbone.count_params()}
    measure_generation(arguments, results, ours, peers)
    if not arguments.no_profile:
        results["profile"] = {
            "greedy": [profile_greedy(arguments, ours, peers, rows)
                       for rows in (1, arguments.batch_size)],
            "beam": profile_beam(arguments, ours),
        }
    results["load_average_at_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - started
    output = pathlib.Path(arguments.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(output.with_suffix(".md"), arguments, results)
    print(output.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
