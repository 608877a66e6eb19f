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

3. `example` mode replays examples/shakespeare_lm.py's recipe on JAX, with
   keraslm's AdamW and warmup-cosine schedule, moving windows, and test
   scored in disjoint and stride-64 windows as keraslm does; each spec is
   `key=value,...` over `EXAMPLE` below (an empty spec is the example):

       KERAS_BACKEND=jax python benchmarks/shakespeare_pilot_jax.py example .gpu \
           "" "ema=0.999" "ema=0.999,drop=0.15,wd=0.2,seed=1"

   Keys beyond the example's: `ema` (Keras' weight average, 0: off),
   `emastart` (the average copies the weights until that step, then
   averages), `swa` (1: a uniform average from `emastart`), `ashare`
   (`heads` or `batch`: one attention-dropout mask shared across heads or
   across the batch). Its results:
   benchmarks/results/pilots/shakespeare_example_jax_h100.jsonl. Run the
   specs as parallel processes on one GPU
   (XLA_PYTHON_CLIENT_PREALLOCATE=false); eight of them took about 5
   minutes together on an H100.
"""

import json
import math
import os
import sys
import time

import numpy as np


def prepare(data_dir, out_dir, *vocabulary_sizes):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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


EXAMPLE = dict(V=4096, d=256, L=4, H=4, ffn=1024, T=256, B=32, steps=2800, warmup=140,
               lr=2e-3, wd=0.1, demb=1, drop=0.1, adrop=0.0, act="gelu", pos="rotary",
               ema=0.0, emastart=0, swa=0, seed=0, ashare="none")


def _example_spec(spec):
    config = dict(EXAMPLE)
    for item in filter(None, spec.split(",")):
        key, value = item.split("=")
        if key not in EXAMPLE:
            raise SystemExit(f"unknown key {key!r} in spec {spec!r}; keys: {sorted(EXAMPLE)}")
        config[key] = type(EXAMPLE[key])(value)
    return config


def _moving_windows(ids, length, batch, steps, rng):
    """Each pass cuts the stream at a new offset and shuffles; passes run on."""
    x, y, have = [], [], 0
    while have < steps * batch:
        a, b = windows(ids[int(rng.integers(0, length)):], length)
        order = rng.permutation(len(a))
        x.append(a[order])
        y.append(b[order])
        have += len(a)
    return np.concatenate(x)[:steps * batch], np.concatenate(y)[:steps * batch]


def _nll(model, x, y):
    import keras

    logits = keras.ops.cast(model(x, training=False), "float32")
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits, axis=-1))
    return -np.take_along_axis(log_probs, y[..., None], -1)[..., 0]


def _score(model, ids, length, stride):
    """Total nats of ids[1:]: windows every `stride` tokens, each token once."""
    starts = list(range(0, len(ids) - length, stride))
    total, counted = 0.0, 0
    for i in range(0, len(starts), 128):
        batch = starts[i:i + 128]
        nll = _nll(model, np.stack([ids[j:j + length] for j in batch]),
                   np.stack([ids[j + 1:j + length + 1] for j in batch]))
        for row, j in enumerate(batch):
            part = nll[row] if j == 0 else nll[row, length - stride:]
            total += float(part.sum())
            counted += len(part)
    end = starts[-1] + length
    if end < len(ids) - 1:  # the tail, with the preceding context
        nll = _nll(model, ids[None, len(ids) - 1 - length:len(ids) - 1],
                   ids[None, len(ids) - length:])[0]
        total += float(nll[end - (len(ids) - 1):].sum())
        counted += len(ids) - 1 - end
    assert counted == len(ids) - 1, (counted, len(ids))
    return total


def example_one(data_dir, spec):
    import keras

    import keraslm
    from keraslm.optimizers import AdamW
    from keraslm.schedules import warmup_cosine_schedule

    c = _example_spec(spec)

    class Averaging(AdamW):
        """Keras' weight average, optionally from a later step or uniform."""

        def _update_model_variables_moving_average(self, variables):
            if not c["swa"] and not c["emastart"]:  # Keras' own: step 1 copies
                return super()._update_model_variables_moving_average(variables)
            ops = keras.ops
            t = ops.cast(self.iterations, "float32")
            start = float(c["emastart"])
            momentum = (ops.where(t < start, 0.0, (t - start) / (t - start + 1.0))
                        if c["swa"] else ops.where(t < start, 0.0, self.ema_momentum))
            for variable, average in zip(variables, self._model_variables_moving_average):
                if average is not None:
                    m = ops.cast(momentum, variable.dtype)
                    average.assign(m * average + (1.0 - m) * variable)

    train = np.load(os.path.join(data_dir, f"sp{c['V']}_train.npy")).astype("int32")
    keras.utils.set_random_seed(c["seed"])
    model = keraslm.models.transformer_lm(
        vocabulary_size=c["V"], num_layers=c["L"], num_heads=c["H"], hidden_dim=c["d"],
        intermediate_dim=c["ffn"], max_sequence_length=c["T"], dropout=c["drop"],
        attention_dropout=c["adrop"], activation=c["act"], position_encoding=c["pos"])
    if c["ashare"] != "none":
        shape = {"heads": (None, 1, None, None), "batch": (1, None, None, None)}[c["ashare"]]
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, keras.layers.Dropout) and layer.name == "attention_dropout":
                layer.noise_shape = shape
    options = dict(global_clipnorm=1.0)
    averaging = c["ema"] > 0 or c["swa"]
    if averaging:
        options.update(use_ema=True, ema_momentum=c["ema"] or 0.99)
    model.compile(
        optimizer=Averaging(
            warmup_cosine_schedule(c["lr"], decay_steps=c["steps"] - c["warmup"],
                                   warmup_steps=c["warmup"]),
            weight_decay=c["wd"], decay_embeddings=bool(c["demb"]), **options),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _moving_windows(train, c["T"], c["B"], c["steps"], np.random.default_rng(c["seed"]))
    with open(os.path.join(data_dir, "characters.json")) as handle:
        characters = json.load(handle)
    valid = np.load(os.path.join(data_dir, f"sp{c['V']}_valid.npy")).astype("int32")
    start, curve = time.time(), []
    # fit() swaps the average in when it ends, so an averaged run is one call.
    parts = 1 if averaging else 5
    size = c["steps"] // parts * c["B"]
    for part in range(parts):
        end = None if part == parts - 1 else (part + 1) * size
        history = model.fit(x[part * size:end], y[part * size:end], batch_size=c["B"],
                            epochs=1, verbose=0, shuffle=False)
        curve.append([round(history.history["loss"][-1], 3),
                      round(_score(model, valid, c["T"], c["T"]) / (len(valid) - 1), 4)])
    result = {"spec": spec, "params": model.count_params(),
              "curve(train_loss,valid_nats)": curve}
    for split in ("valid", "test"):
        ids = np.load(os.path.join(data_dir, f"sp{c['V']}_{split}.npy")).astype("int32")
        for stride in (c["T"], 64):
            result[f"{split}_{stride}"] = round(
                _score(model, ids, c["T"], stride) / characters[split] / math.log(2), 4)
    result["seconds"] = round(time.time() - start)
    print(json.dumps(result), flush=True)


def main(argv):
    if len(argv) >= 3 and argv[0] == "prepare":
        return prepare(*argv[1:])
    runners = {"example": example_one, "sweep": sweep_one}
    if len(argv) >= 3 and argv[0] in runners:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for spec in argv[2:]:
            runners[argv[0]](argv[1], spec)
        return None
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
