"""`--strategy mirrored` equals one device: clipping and the masked loss.

Keras' optimizers clip each replica's gradient before the replicas' sum;
keraslm's clip the all-reduced global gradient
(`keraslm.optimizers.GlobalClipAcrossReplicas`). Keras averages a masked
loss over each replica's own real tokens; keraslm's masked loss over the
global batch's. Two logical CPU devices
make a two-replica `MirroredStrategy` on any machine; they must be set up
before TensorFlow starts, hence the subprocess.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    import keraslm
    from keraslm.training import TrainConfig
    from keraslm.training.run import _check_clipping_across_replicas

    train, out = sys.argv[1], sys.argv[2]
    common = dict(task="lm", train=train, valid=train, tokenizer="character", steps=6,
                  checkpoint_every=3, batch_size=8, sequence_length=32, verbose=False,
                  learning_rate=1e-2, model_options=dict(
                      num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64,
                      dropout=0.0))

    def weights(result):
        return [w.numpy() for w in result.model.weights]

    def largest_difference(a, b):
        return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))

    report = {}
    one = weights(keraslm.train(output_dir=out + "/one", global_clipnorm=0.05, **common))
    unclipped = weights(keraslm.train(output_dir=out + "/unclipped", **common))
    for name in ("adamw", "sgd"):
        mirrored = keraslm.train(output_dir=out + "/" + name, global_clipnorm=0.05,
                                 strategy="mirrored", optimizer=name, **common)
        reference = one if name == "adamw" else weights(keraslm.train(
            output_dir=out + "/one_sgd", global_clipnorm=0.05, optimizer="sgd", **common))
        report[name] = largest_difference(weights(mirrored), reference)
    report["replicas"] = tf.distribute.MirroredStrategy().num_replicas_in_sync
    report["clip_matters"] = largest_difference(one, unclipped)
    config = TrainConfig(train=train, strategy="mirrored", global_clipnorm=1.0)
    try:
        _check_clipping_across_replicas(config, keras.optimizers.Lion(global_clipnorm=1.0))
    except ValueError as error:
        report["refused"] = str(error)
    print("REPORT " + json.dumps(report))
""")


def test_mirrored_global_clipping_equals_one_device(corpus, tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, corpus["lm_valid"],
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    assert report["replicas"] == 2
    assert report["clip_matters"] > 1e-3  # the clip is active in these steps
    assert report["adamw"] < 1e-5 and report["sgd"] < 1e-5, report
    assert "would clip each of the 2 replicas' gradients on its own" in report["refused"]


LOSS_SCRIPT = textwrap.dedent("""
    import json
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from keraslm import registry

    rng = np.random.default_rng(0)
    labels = rng.integers(1, 7, (4, 10)).astype("int32")
    labels[0, 2:] = -100   # replica 0 (rows 0-1): 12 real tokens
    labels[1, 4:] = -100   # replica 1 (rows 2-3): 20
    logits = rng.normal(size=(4, 10, 7)).astype("float32")
    kernel = rng.normal(size=(7, 7)).astype("float32")
    loss = registry.losses.build("masked_sparse_categorical_crossentropy",
                                 ignore_class=-100)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                           ignore_class=-100)

    def value_and_gradient(loss_fn, weights, y, x):
        with tf.GradientTape() as tape:
            value = loss_fn(y, tf.einsum("btk,kj->btj", x, weights))
        return value, tape.gradient(value, weights)

    report = {}
    strategy = tf.distribute.MirroredStrategy()
    for name, loss_fn in (("keraslm", loss), ("keras", keras_loss)):
        weights = tf.Variable(kernel)
        one, one_gradient = value_and_gradient(loss_fn, weights, labels, logits)
        with strategy.scope():
            shared = tf.Variable(kernel)
        dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(4)
        y, x = next(iter(strategy.experimental_distribute_dataset(dataset)))
        values, gradients = strategy.run(
            lambda y, x: value_and_gradient(loss_fn, shared, y, x), args=(y, x))
        total = strategy.reduce("SUM", values, axis=None)
        gradient = strategy.reduce("SUM", gradients, axis=None)
        report[name] = [abs(float(total) - float(one)),
                        float(np.max(np.abs(gradient.numpy() - one_gradient.numpy())))]
    print("REPORT " + json.dumps(report))
""")


def test_masked_loss_is_averaged_over_the_global_batch():
    """Two replicas with 12 and 20 real tokens: the sum of the replicas'
    losses and gradients is one device's, where Keras' own loss averages
    per replica (the comparison shows the check can fail)."""
    result = subprocess.run([sys.executable, "-c", LOSS_SCRIPT], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    assert max(report["keraslm"]) < 1e-5, report
    assert report["keras"][0] > 1e-2, report  # per-replica averaging differs
