"""The samplers: how one token id is drawn from a step's logits.

A sampler is named by a string in `SAMPLERS`. Each has two implementations
that follow the same rule: `_pick` in NumPy (one row; the step-by-step loop,
used on backends other than TensorFlow and for models with neither a cache
nor a state) and `_tf_sample` in TensorFlow ops (a batch of rows, inside the
XLA decoding loop of `keraslm.generation.loop`). Draws with the same seed differ between the two:
NumPy draws with `Generator.choice`, TensorFlow with Gumbel-max noise from a
stateless generator.

- `"greedy"`: the id with the highest logit.
- `"random"`: a draw from `softmax(logits / temperature)`.
- `"top_k"`: a draw among the `top_k` highest logits.
- `"top_p"`: a draw from the smallest set of most likely ids whose
  probability reaches `top_p` (nucleus sampling).

Example:

```python
keraslm.generation.generate_ids(model, [5, 17, 9], 20, sampler="top_k", top_k=5)
```
"""

import numpy as np

SAMPLERS = ("greedy", "top_k", "top_p", "random")


def _pick(logits, sampler, temperature, top_k, top_p, rng):
    """One id from NumPy logits `(vocab,)`, drawn with `rng`."""
    if sampler == "greedy":
        return int(np.argmax(logits))
    logits = logits.astype("float64") / max(temperature, 1e-6)
    if sampler == "top_k":
        cutoff = np.sort(logits)[-min(top_k, len(logits))]
        logits = np.where(logits < cutoff, -np.inf, logits)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    if sampler == "top_p":
        order = np.argsort(-probabilities)
        cumulative = np.cumsum(probabilities[order])
        keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]
        mask = np.zeros_like(probabilities)
        mask[keep] = probabilities[keep]
        probabilities = mask / mask.sum()
    return int(rng.choice(len(probabilities), p=probabilities))


def _tf_sample(logits, sampler, temperature, top_k, top_p, seed):
    """`_pick` in TensorFlow ops: one id per row from float32 logits
    `(batch, vocab)` (or one id from `(vocab,)`); `temperature`, `top_k`
    and `top_p` are tensors (no recompilation)."""
    import tensorflow as tf

    if len(logits.shape) == 1:
        return _tf_sample(logits[None], sampler, temperature, top_k, top_p, seed)[0]
    if sampler == "greedy":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = logits / tf.maximum(temperature, 1e-6)
    if sampler in ("top_k", "top_p"):
        order = tf.argsort(logits, axis=-1, direction="DESCENDING")
        ordered = tf.gather(logits, order, batch_dims=1)
    if sampler == "top_k":
        k = tf.minimum(top_k, tf.shape(logits)[-1])
        kth = tf.gather(ordered, k - 1, axis=-1)[:, None]
        logits = tf.where(logits < kth, -float("inf"), logits)
    elif sampler == "top_p":
        # Keep the shortest prefix whose mass reaches top_p (at least one id).
        before = tf.cumsum(tf.nn.softmax(ordered), axis=-1, exclusive=True)
        keep = tf.gather(before < top_p, tf.argsort(order, axis=-1), batch_dims=1)
        logits = tf.where(keep, logits, -float("inf"))
    # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits).
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed, minval=1e-20,
                                          maxval=1.0)
    return tf.argmax(logits - tf.math.log(-tf.math.log(uniform)), axis=-1,
                     output_type=tf.int32)
