"""Pilot sweep for examples/shakespeare_lm.py on the JAX backend (a GPU).

The Shakespeare example must reach its bits per character within 60 minutes
of 2-core CPU training, so the shape that wins is the one that learns most
from the steps the CPU can afford. Trying shapes on the CPU costs an hour
each; this script tries them on an accelerator instead, each for the number
of steps the CPU runs in about 50 minutes at that shape's measured CPU
speed (tokens/s of `train_on_batch`, XLA on), and reports validation and
test bits per character. The winner is then run for real, on the CPU,
through `keraslm.train` (examples/shakespeare_lm.py).

1. Where TensorFlow is installed, write the token ids (a lossless
   SentencePiece BPE trained on train.txt, as in the example):

       .venv/bin/python benchmarks/shakespeare_pilot_jax.py prepare \\
           ../shared/data/shakespeare .gpu 4096

2. Where JAX runs (keras and keras-hub wheels carried to the GPU machine),
   one run per spec `V:d:L:steps:lr:dropout:T:weight_decay:batch:positions`:

       KERAS_BACKEND=jax python benchmarks/shakespeare_pilot_jax.py sweep .gpu \\
           4096:256:4:3270:2e-3:0.1:256:0.1:32:rotary

   Each run prints a JSON line: the training loss at the end of each pass,
   `valid` and `test` bits per character (non-overlapping windows, as
   keraslm evaluates), and `test_stride_half` (windows overlapping by half,
   only the second half scored: more context per token).

Results of the sweep that chose the example's shape:
benchmarks/results/pilots/shakespeare_sweep_jax_h100.jsonl (its first
entries used shorter specs: `V:d:L:steps:lr:dropout`, then
`...:T:weight_decay`, with batch 32 and learned positions).
"""

import json
import math
import os
import sys
import time

def prepare(data_dir, out_dir, *vocabulary_sizes):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from keraslm import data, text

    lines = {split: data.read_text(os.path.join(data_dir, f"{split}.txt"),
                                   split="line", keep_empty=True)
             for split in ("train", "valid", "test")}
    os.makedirs(out_dir, exist_ok=True)
    # Characters of each split, every line's newline included: the bits per
    # character divide by these.
    characters = {split: sum(len(t) + 1 for t in texts) for split, texts in lines.items()}
    with open(os.path.join(out_dir, "characters.json"), "w") as handle:
        json.dump(characters, handle)
    for size in map(int, vocabulary_sizes):
        tokenizer = text.train_tokenizer(
            "sentencepiece", lines["train"], vocabulary_size=size, model_type="bpe",
            normalization="identity", remove_extra_whitespaces=False,
            add_dummy_prefix=False)
        for split, texts in lines.items():
            stream = []
            for row in data.tokenize_texts(tokenizer, texts).to_list():
                stream += row + [tokenizer.eos_id]
            np.save(os.path.join(out_dir, f"sp{size}_{split}.npy"),
                    np.array(stream, np.int16))
            print(size, split, len(stream), "tokens", characters[split],
                  "characters", flush=True)


def windows(ids, length):
    count = (len(ids) - 1) // length
    return (ids[:count * length].reshape(count, length),
            ids[1:count * length + 1].reshape(count, length))


def sweep_one(data_dir, spec):
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    import keraslm

    (V, d, L, steps, lr, dropout, T, weight_decay, B, positions) = spec.split(":")
    V, d, L, steps, T, B = map(int, (V, d, L, steps, T, B))
    lr, dropout, weight_decay = float(lr), float(dropout), float(weight_decay)
    train = np.load(os.path.join(data_dir, f"sp{V}_train.npy")).astype("int32")
    keras.utils.set_random_seed(0)
    model = keraslm.models.transformer_lm(
        vocabulary_size=V, num_layers=L, num_heads=max(1, d // 64), hidden_dim=d,
        intermediate_dim=4 * d, max_sequence_length=T, dropout=dropout,
        position_encoding=positions)
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=lr, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.AdamW(
        schedule, weight_decay=weight_decay, global_clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    start, done, losses = time.time(), 0, []
    while done < steps:  # passes over the data, each from a random offset
        x, y = windows(train[rng.integers(0, T):], T)
        order = rng.permutation(len(x))
        count = min(len(order) // B, steps - done)
        history = model.fit(x[order[:count * B]], y[order[:count * B]], batch_size=B,
                            epochs=1, verbose=0, shuffle=False)
        done += count
        losses.append(round(history.history["loss"][-1], 3))
    result = {"spec": spec, "params": model.count_params(), "epoch_losses": losses}
    with open(os.path.join(data_dir, "characters.json")) as handle:
        characters = json.load(handle)
    for split in ("valid", "test"):
        ids = np.load(os.path.join(data_dir, f"sp{V}_{split}.npy")).astype("int32")
        x, y = windows(ids, T)
        loss = float(model.evaluate(x, y, batch_size=64, verbose=0))
        scale = (len(ids) - 1) / characters[split] / math.log(2)
        result[split] = round(loss * scale, 4)
        if split == "test":
            stride, total, counted = T // 2, 0.0, 0
            starts = list(range(0, len(ids) - T - 1, stride))
            for i in range(0, len(starts), 64):
                batch = starts[i:i + 64]
                xb = np.stack([ids[j:j + T] for j in batch])
                yb = np.stack([ids[j + 1:j + T + 1] for j in batch])
                log_probs = np.asarray(jax.nn.log_softmax(
                    jnp.asarray(model.predict_on_batch(xb)), axis=-1))
                nll = -np.take_along_axis(log_probs, yb[..., None], -1)[..., 0]
                for row, j in enumerate(batch):
                    part = nll[row] if j == 0 else nll[row, T - stride:]
                    total += float(part.sum())
                    counted += len(part)
            result["test_stride_half"] = round(total / counted * scale, 4)
    result["seconds"] = round(time.time() - start)
    print(json.dumps(result), flush=True)


def main(argv):
    if len(argv) >= 3 and argv[0] == "prepare":
        return prepare(*argv[1:])
    if len(argv) >= 3 and argv[0] == "sweep":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for spec in argv[2:]:
            sweep_one(argv[1], spec)
        return None
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
