"""Data at pretraining scale: a 20 MB and a 1 GB corpus, from the files to the
first training step.

The corpora are built from the shared data: Shakespeare's plays
(`shakespeare/train.txt`) and both sides of the Bible pairs
(`bible_en_es/train.tsv`, English and Spanish verses as lines), 11.9 MB of
text in all, **repeated** until the size is reached (1.7 times for 20 MB,
about 86 times for 1 GB) and written as shards of plain text in a work
directory. Repetition does not flatter the streaming stages (every byte is
read and tokenized again), but it does make the tokenizer's word counts
those of 11.9 MB of distinct text.

For each size, every stage runs in its own Python process, whose peak RSS
(`ru_maxrss`, or `VmHWM` for the training run) is reported:

1. **tokenizer**: keraslm's WordPiece trainer (`keraslm.text.train_tokenizer`,
   the default of `keraslm train`) reading the shards as a stream
   (`keraslm.data.Corpus`), against Hugging Face `tokenizers` training the
   same vocabulary size on the same files itself (BertPreTokenizer +
   WordPieceTrainer, Rust, reading the files): seconds and their ratio.
2. **cache**: tokenizing the corpus into the token cache
   (`keraslm.data.TokenCache.build`): seconds and tokens/s (the first
   run's pipeline, tokenizing).
3. **reader**: the training pipeline (`causal_lm_dataset` reading windows of
   the cache, shuffled, batched as the run's default): tokens/s delivered.
4. **train**: `keraslm train --task lm --train SHARDS --valid
   shakespeare/valid.txt` with every default except `--steps`, as a user
   runs it: seconds from launch until `steps.csv` holds its first step, and
   what the training steps consume (tokens/s, from the steps logged over
   time after the first few); then a second run sharing the token cache
   (`--token-cache`, as a repeated or resumed run does): its time to the
   first step. Each run is stopped once measured.

Targets (issue 20): first step within 30 s for 20 MB; tokenizer within 2x
of `tokenizers`; pipeline at least 10x what training consumes; peak RSS
under 2 GB for 1 GB.

Usage:

    .venv/bin/python benchmarks/data_pipeline.py [--sizes 20,1000] [--work /tmp/keraslm-data-bench]

(`--sizes` in MB.) Writes benchmarks/results/data_pipeline.json and .md.
"""

import argparse
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
SHARD_BYTES = 50 * 1024 * 1024
VOCABULARY_SIZE = 8000  # keraslm train's default
KERASLM = pathlib.Path(sys.executable).with_name("keraslm")

TARGETS = {
    "first_step_seconds_20mb": 30.0,
    "tokenizer_over_hf": 2.0,
    "pipeline_over_training": 10.0,
    "peak_rss_mb_1gb": 2048.0,
}


def source_lines(data):
    lines = []
    with open(data / "shakespeare" / "train.txt", encoding="utf-8") as f:
        lines.extend(line.rstrip("\n") for line in f)
    with open(data / "bible_en_es" / "train.tsv", encoding="utf-8") as f:
        for line in f:
            english, spanish = line.rstrip("\n").split("\t")
            lines.extend((english, spanish))
    return lines


def build_corpus(data, directory, megabytes):
    """Shards of about 50 MB under `directory` holding `megabytes` MB; reused
    when already there."""
    target = megabytes * 1024 * 1024
    done = directory / "done.json"
    if done.exists() and json.loads(done.read_text()) == {"bytes": target}:
        return sorted(directory.glob("*.txt"))
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    lines = [(line + "\n").encode("utf-8") for line in source_lines(data)]
    written, shard, handle, index = 0, 0, None, 0
    while written < target:
        if handle is None or handle.tell() >= SHARD_BYTES:
            if handle:
                handle.close()
            handle = open(directory / f"part-{shard:04d}.txt", "wb")
            shard += 1
        line = lines[index % len(lines)]
        index += 1
        handle.write(line)
        written += len(line)
    handle.close()
    done.write_text(json.dumps({"bytes": target}))
    return sorted(directory.glob("*.txt"))


# Each stage: a script run in a fresh interpreter; prints one JSON line.
PRELUDE = """
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
args = json.loads(sys.argv[1])
def done(**result):
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)
"""

STAGES = {
    "tokenizer": """
from keraslm import data, text
corpus = data.Corpus(args["glob"])
start = time.perf_counter()
tokenizer = text.train_tokenizer("wordpiece", corpus, vocabulary_size=args["vocabulary_size"])
seconds = time.perf_counter() - start
tokenizer.save(args["tokenizer"])
done(seconds=seconds, vocabulary_size=tokenizer.vocabulary_size)
""",
    "hf_tokenizer": """
import glob, tokenizers
start = time.perf_counter()
learner = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
learner.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
trainer = tokenizers.trainers.WordPieceTrainer(
    vocab_size=args["vocabulary_size"], show_progress=False,
    special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
learner.train(sorted(glob.glob(args["glob"])), trainer)
done(seconds=time.perf_counter() - start, vocabulary_size=learner.get_vocab_size())
""",
    "cache": """
from keraslm import data, text
tokenizer = text.load_tokenizer(args["tokenizer"])
cache = data.TokenCache.build(data.Corpus(args["glob"]), tokenizer, args["cache"])
done(seconds=cache.seconds, tokens=int(len(cache.ids)), characters=cache.num_characters,
     tokens_per_second=len(cache.ids) / cache.seconds)
""",
    "reader": """
import tensorflow as tf
from keraslm import data, text
from keraslm.training import TrainConfig
config = TrainConfig(task="lm", train=args["glob"])
tokenizer = text.load_tokenizer(args["tokenizer"])
cache = data.TokenCache.build(data.Corpus(args["glob"]), tokenizer, args["cache"])
dataset = data.causal_lm_dataset(cache, tokenizer, sequence_length=config.sequence_length,
                                 batch_size=config.batch_size, shuffle=True, seed=0,
                                 random_offsets=True).dataset
iterator = iter(dataset.repeat())
for _ in range(20):  # warm-up
    next(iterator)
tokens, start = 0, time.perf_counter()
while time.perf_counter() - start < args["seconds"]:
    inputs = next(iterator)[0]
    inputs = inputs["token_ids"] if isinstance(inputs, dict) else inputs
    tokens += int(tf.size(inputs))
seconds = time.perf_counter() - start
# A live iterator whose threads call numpy_function can hang the
# interpreter's exit (the threads wait for the GIL): close it first.
del iterator
done(tokens_per_second=tokens / seconds, batch_size=config.batch_size,
     sequence_length=config.sequence_length)
""",
}


def run_stage(name, **args):
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(STAGES[name])
    process = subprocess.run([sys.executable, "-c", script, json.dumps(args)],
                             capture_output=True, text=True, cwd=ROOT)
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"stage {name} failed ({process.returncode}):\n{process.stderr[-3000:]}")


def _peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_training(glob, valid, output, token_cache, measure_steps, timeout):
    """`keraslm train` until `measure_steps` steps are logged: time to the
    first step, training tokens/s after the first few steps, peak RSS."""
    steps_file = output / "steps.csv"
    command = [str(KERASLM), "train", "--task", "lm", "--train", glob, "--valid", valid,
               "--steps", str(measure_steps + 100), "--output", str(output),
               "--token-cache", str(token_cache)]
    started = time.perf_counter()
    log = open(output.with_suffix(".log"), "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                               start_new_session=True)
    first_step = None
    marks = []  # (seconds, steps logged)
    peak = None
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"keraslm train ended ({process.returncode}) before "
                                   f"{measure_steps} steps; see {log.name}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"keraslm train took over {timeout} s; see {log.name}")
            steps = 0
            if steps_file.exists():
                steps = max(0, len(steps_file.read_text().splitlines()) - 1)
            now = time.perf_counter() - started
            if steps and first_step is None:
                first_step = now
            if steps and (not marks or marks[-1][1] != steps):
                marks.append((now, steps))
            peak = _peak_rss_mb(process.pid) or peak
            if steps >= measure_steps:
                break
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
    # Consumption from step 5 on (compilation and the first steps excluded).
    (t0, s0), (t1, s1) = next(m for m in marks if m[1] >= 5), marks[-1]
    header = (output / "config.json")
    derived = json.loads(header.read_text())["derived"] if header.exists() else {}
    config = json.loads(header.read_text())["config"] if header.exists() else {}
    tokens_per_step = config.get("batch_size", 0) * config.get("sequence_length", 0)
    return {
        "first_step_seconds": first_step,
        "train_steps_per_second": (s1 - s0) / (t1 - t0),
        "train_tokens_per_second": (s1 - s0) / (t1 - t0) * tokens_per_step,
        "tokens_per_step": tokens_per_step,
        "parameters": derived.get("parameters"),
        "peak_rss_mb": peak,
    }


def measure(size_mb, work, data, reader_seconds, train_steps):
    corpus_dir = work / f"corpus-{size_mb}mb"
    started = time.perf_counter()
    shards = build_corpus(data, corpus_dir, size_mb)
    print(f"[{size_mb} MB] corpus: {len(shards)} shards "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    glob = str(corpus_dir / "*.txt")
    size_dir = work / f"runs-{size_mb}mb"
    shutil.rmtree(size_dir, ignore_errors=True)
    size_dir.mkdir(parents=True)
    tokenizer_path = str(size_dir / "tokenizer")
    cache = str(size_dir / "cache")
    result = {"corpus_mb": size_mb, "corpus_bytes": sum(p.stat().st_size for p in shards),
              "shards": len(shards)}
    result["tokenizer"] = run_stage("tokenizer", glob=glob, tokenizer=tokenizer_path,
                                    vocabulary_size=VOCABULARY_SIZE)
    print(f"[{size_mb} MB] tokenizer: {result['tokenizer']}", flush=True)
    result["hf_tokenizer"] = run_stage("hf_tokenizer", glob=glob,
                                       vocabulary_size=VOCABULARY_SIZE)
    print(f"[{size_mb} MB] hf tokenizers: {result['hf_tokenizer']}", flush=True)
    result["tokenizer_over_hf"] = (result["tokenizer"]["seconds"]
                                   / result["hf_tokenizer"]["seconds"])
    result["cache"] = run_stage("cache", glob=glob, tokenizer=tokenizer_path, cache=cache)
    print(f"[{size_mb} MB] cache: {result['cache']}", flush=True)
    result["reader"] = run_stage("reader", glob=glob, tokenizer=tokenizer_path, cache=cache,
                                 seconds=reader_seconds)
    print(f"[{size_mb} MB] reader: {result['reader']}", flush=True)
    valid = str(data / "shakespeare" / "valid.txt")
    train_cache = size_dir / "train-cache"
    timeout = 1800
    result["train_first_run"] = run_training(glob, valid, size_dir / "run1", train_cache,
                                             train_steps, timeout)
    print(f"[{size_mb} MB] first run: {result['train_first_run']}", flush=True)
    result["train_cached_run"] = run_training(glob, valid, size_dir / "run2", train_cache,
                                              train_steps, timeout)
    print(f"[{size_mb} MB] second run: {result['train_cached_run']}", flush=True)
    training = result["train_first_run"]["train_tokens_per_second"]
    result["cache_over_training"] = result["cache"]["tokens_per_second"] / training
    result["reader_over_training"] = result["reader"]["tokens_per_second"] / training
    result["peak_rss_mb"] = max(stage["peak_rss_mb"] for stage in (
        result["tokenizer"], result["cache"], result["reader"],
        result["train_first_run"], result["train_cached_run"]))
    return result


def write(results, args):
    import keras
    import tensorflow as tf
    import tokenizers

    by_size = {r["corpus_mb"]: r for r in results}
    checks = {}
    if 20 in by_size:
        checks["first_step_seconds_20mb"] = by_size[20]["train_first_run"]["first_step_seconds"]
    checks["tokenizer_over_hf"] = max(r["tokenizer_over_hf"] for r in results)
    checks["pipeline_over_training"] = min(min(r["cache_over_training"],
                                               r["reader_over_training"]) for r in results)
    if 1000 in by_size:
        checks["peak_rss_mb_1gb"] = by_size[1000]["peak_rss_mb"]
    summary = {
        "command": "python benchmarks/data_pipeline.py " + " ".join(sys.argv[1:]),
        "corpora": "shakespeare/train.txt + bible_en_es/train.tsv (English and Spanish "
                   "lines), 11.9 MB, repeated to each size, 50 MB plain-text shards",
        "vocabulary_size": VOCABULARY_SIZE,
        "targets": {name: {"value": checks.get(name), "target": target,
                           "met": (checks.get(name) is not None
                                   and checks[name] <= target
                                   if name != "pipeline_over_training"
                                   else checks.get(name, 0) >= target)}
                    for name, target in TARGETS.items() if name in checks},
        "sizes": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "tensorflow": tf.__version__, "keras": keras.__version__,
        "tokenizers": tokenizers.__version__,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_pipeline.json").write_text(json.dumps(summary, indent=1) + "\n")

    def row(label, key):
        return f"| {label} | " + " | ".join(key(r) for r in results) + " |"

    lines = [
        "# Data pipeline at pretraining scale",
        "",
        f"`{summary['command']}` on {summary['machine']} (TensorFlow "
        f"{summary['tensorflow']}, tokenizers {summary['tokenizers']}).",
        "",
        f"Corpora: {summary['corpora']}. WordPiece, {VOCABULARY_SIZE:,} ids "
        "(the `keraslm train` default). Every stage runs in its own process.",
        "",
        "| | " + " | ".join(f"{r['corpus_mb']:,} MB" for r in results) + " |",
        "|---|" + "---|" * len(results),
        row("shards", lambda r: str(r["shards"])),
        row("tokenizer training, keraslm (s)", lambda r: f"{r['tokenizer']['seconds']:.1f}"),
        row("tokenizer training, HF tokenizers on the files (s)",
            lambda r: f"{r['hf_tokenizer']['seconds']:.1f}"),
        row("keraslm / HF", lambda r: f"{r['tokenizer_over_hf']:.2f}"),
        row("token cache: build (s)", lambda r: f"{r['cache']['seconds']:.1f}"),
        row("token cache: tokens", lambda r: f"{r['cache']['tokens']:,}"),
        row("token cache: tokenizing, tokens/s", lambda r: f"{r['cache']['tokens_per_second']:,.0f}"),
        row("training pipeline from the cache, tokens/s",
            lambda r: f"{r['reader']['tokens_per_second']:,.0f}"),
        row("training consumes, tokens/s (default model)",
            lambda r: f"{r['train_first_run']['train_tokens_per_second']:,.0f}"),
        row("tokenizing / training", lambda r: f"{r['cache_over_training']:.0f}x"),
        row("cached pipeline / training", lambda r: f"{r['reader_over_training']:.0f}x"),
        row("`keraslm train`: launch to first step (s)",
            lambda r: f"{r['train_first_run']['first_step_seconds']:.1f}"),
        row("same, second run on the shared cache (s)",
            lambda r: f"{r['train_cached_run']['first_step_seconds']:.1f}"),
        row("peak RSS, tokenizer training (MB)", lambda r: f"{r['tokenizer']['peak_rss_mb']:.0f}"),
        row("peak RSS, HF tokenizers (MB)", lambda r: f"{r['hf_tokenizer']['peak_rss_mb']:.0f}"),
        row("peak RSS, cache build (MB)", lambda r: f"{r['cache']['peak_rss_mb']:.0f}"),
        row("peak RSS, `keraslm train` (MB)",
            lambda r: f"{r['train_first_run']['peak_rss_mb']:.0f}"),
        "",
        "| target | value | target | met |",
        "|---|---|---|---|",
        *(f"| {name} | {t['value']:.2f} | {'>=' if name == 'pipeline_over_training' else '<='} "
          f"{t['target']:g} | {'yes' if t['met'] else 'NO'} |"
          for name, t in summary["targets"].items()),
        "",
        "Training consumption is the default `keraslm train --task lm` model "
        "(steps logged to `steps.csv` over time, from step 5 on). The first "
        "step includes starting Python and TensorFlow, reading, tokenizer "
        "training, the token cache and model compilation.",
    ]
    (RESULTS / "data_pipeline.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,1000", help="corpus sizes in MB")
    parser.add_argument("--work", default="/tmp/keraslm-data-bench")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--reader-seconds", type=float, default=10.0)
    parser.add_argument("--train-steps", type=int, default=25)
    args = parser.parse_args()
    work, data = pathlib.Path(args.work), pathlib.Path(args.data)
    results = [measure(float(size) if "." in size else int(size), work, data, args.reader_seconds, args.train_steps)
               for size in args.sizes.split(",")]
    write(results, args)


if __name__ == "__main__":
    main()
