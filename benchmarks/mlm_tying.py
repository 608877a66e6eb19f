"""Masked-LM heads: tied to the token embedding (BERT) or a separate projection.

Trains three masked language models on the same masked batches of
character-level Shakespeare (the first 6,000 lines from line 20,000 of
train.txt, validated on the first 600 of valid.txt; 2 layers, 2 heads,
hidden 64, FFN 128, windows of 32, batch 32, AdamW with warm-up + cosine to
a peak of 5e-3, global norm clipping 1.0, as `keraslm train` builds them;
positions up to 256 as the `tiny` preset), from the same initial seed:

1. keras-hub `BertBackbone` + `MaskedLMHead` (tied: the peer);
2. keraslm `transformer_encoder` + the `masked_lm` head with
   `tie_weights=True` (projection onto the token embedding plus a bias);
3. the same with the default `tie_weights=False` (a separate `Dense`).

Reports the masked-token accuracy and loss on the validation windows, and
the accuracy of always predicting the most frequent masked character.

Usage:

    .venv/bin/python benchmarks/mlm_tying.py [--data ../shared/data] [--steps 800]

Writes benchmarks/results/mlm_tying.json and .md.
"""

import argparse
import json
import os
import pathlib
import platform
import time

HERE = pathlib.Path(__file__).resolve().parent
LENGTH, BATCH, WIDTH, POSITIONS = 32, 32, 64, 256


def _lines(path, count, skip=0):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle.readlines()[skip:skip + count]]


def _hub_model(vocabulary_size):
    import keras
    import keras_hub

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=WIDTH,
        intermediate_dim=2 * WIDTH, max_sequence_length=POSITIONS, dropout=0.1)
    token_ids = keras.Input((LENGTH,), dtype="int32")
    hidden = backbone({"token_ids": token_ids,
                       "segment_ids": keras.ops.zeros_like(token_ids),
                       "padding_mask": keras.ops.not_equal(token_ids, 0)})["sequence_output"]
    positions = keras.layers.Lambda(lambda ids: keras.ops.broadcast_to(
        keras.ops.arange(LENGTH)[None], keras.ops.shape(ids)))(token_ids)
    head = keras_hub.layers.MaskedLMHead(vocabulary_size=vocabulary_size,
                                         token_embedding=backbone.token_embedding,
                                         activation="gelu")
    return keras.Model(token_ids, head(hidden, positions))


def _ours(vocabulary_size, tie_weights):
    import keraslm

    encoder = keraslm.models.transformer_encoder(
        vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=WIDTH,
        intermediate_dim=2 * WIDTH, max_sequence_length=POSITIONS, dropout=0.1)
    return keraslm.registry.task_heads.build("masked_lm", backbone=encoder,
                                             tie_weights=tie_weights)


def _train_and_score(model, train, valid, steps):
    import numpy as np

    import keraslm
    from keraslm.training.config import TrainConfig
    from keraslm.training.run import build_optimizer

    loss = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy",
                                         ignore_class=-100)
    # keraslm train's optimizer for all three: AdamW (no decay on embeddings,
    # biases and norms), 5% warm-up then cosine, clipping at global norm 1.
    optimizer = build_optimizer(TrainConfig(train="-", learning_rate=5e-3), steps)
    model.compile(optimizer=optimizer, loss=loss)
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    correct = total = 0
    loss_sum = 0.0
    for x, y in valid:
        logits = np.asarray(model(x, training=False))
        y = np.asarray(y)
        keep = y != -100
        correct += int((logits.argmax(-1) == y)[keep].sum())
        total += int(keep.sum())
        loss_sum += float(loss(y, logits)) * keep.sum()
    return {"accuracy": correct / total, "loss": loss_sum / total,
            "train_seconds": round(seconds, 1), "parameters": model.count_params()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import collections

    import keras
    import numpy as np

    from keraslm import data, registry

    train_lines = _lines(os.path.join(args.data, "shakespeare", "train.txt"), 6000, 20000)
    valid_lines = _lines(os.path.join(args.data, "shakespeare", "valid.txt"), 600)
    tokenizer = registry.tokenizers.get("character").load().train(train_lines)

    def batches(lines, shuffle):
        return data.masked_lm_dataset(lines, tokenizer, sequence_length=LENGTH,
                                      batch_size=BATCH, shuffle=shuffle,
                                      seed=0).dataset.map(lambda x, y: (x["token_ids"], y))

    # One masking of the validation windows, the same for every model and seed.
    valid = [(np.asarray(x), np.asarray(y)) for x, y in batches(valid_lines, False)]
    counts = collections.Counter()
    for _, y in valid:
        counts.update(y[y != -100].tolist())
    results = {"corpus": "shakespeare train.txt[20000:26000] / valid.txt[:600]",
               "tokenizer": "character", "vocabulary_size": tokenizer.vocabulary_size,
               "steps": args.steps, "masked_tokens": sum(counts.values()),
               "most_frequent_share": max(counts.values()) / sum(counts.values()),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    builders = {"keras_hub_bert_tied": lambda: _hub_model(tokenizer.vocabulary_size),
                "keraslm_tied": lambda: _ours(tokenizer.vocabulary_size, True),
                "keraslm_untied": lambda: _ours(tokenizer.vocabulary_size, False)}
    for name, build in builders.items():
        runs = []
        for seed in args.seeds:
            keras.utils.set_random_seed(seed)
            runs.append(_train_and_score(build(), batches(train_lines, True).repeat(),
                                         valid, args.steps))
            print(name, seed, runs[-1], flush=True)
        results[name] = {"runs": runs, "seeds": args.seeds,
                         "accuracy": float(np.mean([r["accuracy"] for r in runs])),
                         "loss": float(np.mean([r["loss"] for r in runs])),
                         "train_seconds": float(np.mean([r["train_seconds"] for r in runs])),
                         "parameters": runs[0]["parameters"]}
    results["untied_over_hub_accuracy"] = round(
        results["keraslm_untied"]["accuracy"] / results["keras_hub_bert_tied"]["accuracy"], 3)

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "mlm_tying.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = ["# Masked-LM head: tied or separate output projection", "",
            "`.venv/bin/python benchmarks/mlm_tying.py`", "",
            "| model | accuracy (mean) | accuracy per seed | loss (mean) | train s | "
            "parameters |", "|---|---|---|---|---|---|"]
    for name in builders:
        r = results[name]
        per_seed = ", ".join(f"{run['accuracy']:.3f}" for run in r["runs"])
        rows.append(f"| {name} | {r['accuracy']:.4f} | {per_seed} | {r['loss']:.4f} | "
                    f"{r['train_seconds']:.1f} | {r['parameters']} |")
    rows += ["", f"Most frequent masked character's share: "
                 f"{results['most_frequent_share']:.4f} of {results['masked_tokens']} "
                 f"masked tokens; {args.steps} steps; {results['machine']}.", ""]
    (out / "mlm_tying.md").write_text("\n".join(rows))


if __name__ == "__main__":
    main()
