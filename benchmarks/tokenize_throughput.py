"""Tokenizer and input-pipeline throughput against Hugging Face `tokenizers`.

Measures, in one run on shakespeare/train.txt:

1. our WordPiece pipeline (`tf.data`, batches of 1024 lines, parallel map)
   in tokens/s;
2. Hugging Face `tokenizers` WordPiece (BertPreTokenizer + WordPiece, Rust,
   `encode_batch`) on the same vocabulary and the same lines, and how many
   lines get identical ids;
3. the causal-LM task pipeline (`keraslm.data.causal_lm_dataset`): build
   time and tokens/s delivered per epoch;
4. what a training step consumes, in tokens/s: read from
   `benchmarks/results/*.json` of the layers benchmark when present
   (`train_tokens_per_second`), else measured here on a small keras-hub
   Transformer decoder LM (2 layers, hidden 128, sequence 128, batch 32).

Usage:

    .venv/bin/python benchmarks/tokenize_throughput.py [--data ../shared/data] [--repeats 3]

Writes benchmarks/results/tokenize_throughput.json and .md.
"""

import argparse
import glob
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parents[1]


def best_of(repeats, function):
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def ours_pipeline(tokenizer, lines, batch_size=1024):
    import tensorflow as tf

    dataset = (tf.data.Dataset.from_tensor_slices(lines).batch(batch_size)
               .map(tokenizer.tokenize, num_parallel_calls=tf.data.AUTOTUNE)
               .map(lambda ids: tf.size(ids.flat_values))
               .prefetch(tf.data.AUTOTUNE))

    def run():
        return sum(int(n) for n in dataset)

    return run


def hf_tokenizer(vocabulary):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    model = models.WordPiece(vocab={t: i for i, t in enumerate(vocabulary)},
                             unk_token="[UNK]", max_input_chars_per_word=100)
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def training_consumption(repeats):
    for path in sorted(glob.glob(str(ROOT / "benchmarks" / "results" / "*.json"))):
        if path.endswith("tokenize_throughput.json"):
            continue
        try:
            with open(path) as f:
                payload = json.load(f)
        except (OSError, json.JSONDecodeError):
            continue
        value = _find(payload, "train_tokens_per_second")
        if value:
            return float(value), f"from {os.path.relpath(path, ROOT)}"
    import keras
    import keras_hub
    import numpy as np

    vocabulary_size, length, batch, hidden = 2000, 128, 32, 128
    inputs = keras.Input((length,), dtype="int32")
    x = keras_hub.layers.TokenAndPositionEmbedding(vocabulary_size, length, hidden)(inputs)
    for _ in range(2):
        x = keras_hub.layers.TransformerDecoder(4 * hidden, 4)(x)
    model = keras.Model(inputs, keras.layers.Dense(vocabulary_size)(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(0).integers(5, vocabulary_size, (batch * 8, length))
    model.fit(data, data, batch_size=batch, epochs=1, verbose=0)  # compile + warm up
    seconds, _ = best_of(repeats, lambda: model.fit(data, data, batch_size=batch,
                                                   epochs=1, verbose=0))
    return data.size / seconds, (f"measured here: keras-hub TransformerDecoder LM, "
                                 f"2 layers, hidden {hidden}, sequence {length}, "
                                 f"batch {batch}, CPU, fp32")


def _find(payload, key):
    if isinstance(payload, dict):
        if key in payload:
            return payload[key]
        for value in payload.values():
            found = _find(value, key)
            if found:
                return found
    if isinstance(payload, list):
        for value in payload:
            found = _find(value, key)
            if found:
                return found
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vocab-lines", type=int, default=20000,
                        help="Lines used to learn the shared vocabulary.")
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()

    import tensorflow as tf

    from keraslm import data, text

    lines = data.read_text(pathlib.Path(args.data) / "shakespeare" / "train.txt")
    start = time.perf_counter()
    tokenizer = text.WordPieceTokenizer.train(lines[: args.vocab_lines],
                                              vocabulary_size=args.vocab_size)
    train_seconds = time.perf_counter() - start
    vocabulary = tokenizer.get_vocabulary()

    run = ours_pipeline(tokenizer, tf.constant(lines))
    run()  # warm up (graph tracing)
    ours_seconds, ours_tokens = best_of(args.repeats, run)

    hf = hf_tokenizer(vocabulary)
    hf.encode_batch(lines[:1000])
    hf_seconds, encodings = best_of(args.repeats, lambda: hf.encode_batch(lines))
    hf_tokens = sum(len(e.ids) for e in encodings)
    ours_ids = tokenizer(lines).to_list()
    identical = sum(a == e.ids for a, e in zip(ours_ids, encodings))

    start = time.perf_counter()
    task = data.causal_lm_dataset(lines, tokenizer, sequence_length=128, batch_size=32)
    build_seconds = time.perf_counter() - start
    sum(1 for _ in task.dataset)  # first epoch fills the cache
    epoch_seconds, _ = best_of(args.repeats, lambda: sum(1 for _ in task.dataset))
    pipeline_tokens_per_second = task.num_examples * 128 / epoch_seconds

    consumption, consumption_source = training_consumption(args.repeats)
    results = {
        "corpus": "shakespeare/train.txt",
        "lines": len(lines),
        "vocabulary_size": len(vocabulary),
        "vocabulary_train_seconds": round(train_seconds, 2),
        "tokens": ours_tokens,
        "ours_wordpiece_tokens_per_second": round(ours_tokens / ours_seconds),
        "hf_tokenizers_tokens_per_second": round(hf_tokens / hf_seconds),
        "hf_over_ours": round((hf_tokens / hf_seconds) / (ours_tokens / ours_seconds), 2),
        "identical_lines_vs_hf": f"{identical}/{len(lines)}",
        "hf_tokens": hf_tokens,
        "causal_lm_build_seconds": round(build_seconds, 2),
        "causal_lm_pipeline_tokens_per_second": round(pipeline_tokens_per_second),
        "causal_lm_cold_tokens_per_second": round(task.num_tokens / build_seconds),
        "train_step_tokens_per_second": round(consumption),
        "train_step_source": consumption_source,
        "pipeline_over_training": round(pipeline_tokens_per_second / consumption, 1),
        "cold_pipeline_over_training": round(task.num_tokens / build_seconds / consumption, 1),
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "tensorflow": tf.__version__,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenize_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = "\n".join(f"| {k} | {v} |" for k, v in results.items())
    (out / "tokenize_throughput.md").write_text(
        "# Tokenizer and input-pipeline throughput\n\n"
        "`.venv/bin/python benchmarks/tokenize_throughput.py`\n\n"
        "| metric | value |\n|---|---|\n" + rows + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
