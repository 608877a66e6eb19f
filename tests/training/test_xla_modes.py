"""The train step's XLA modes, "fusible" above all: what TensorFlow clusters,
that training is unchanged by it, and the refusals."""

import argparse
import csv
import glob
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keraslm
from keraslm import _xla_flags
from keraslm.training import TrainConfig

MODEL = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}


def clean_environment(**extra):
    """The test process's environment without the TF_XLA_FLAGS keraslm added to it."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    return {**environment, **extra}


def run_python(code, **environment):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300,
                          env=clean_environment(**environment))


def clustered_ops(path):
    """`(op, cluster or None)` for each node of a graph TensorFlow dumped."""
    with open(path) as handle:
        text = handle.read()
    nodes = []
    for node in re.split(r"\nnode \{", text)[1:]:
        op = re.search(r'op: "(\w+)"', node).group(1)
        cluster = re.search(r'key: "_XlaCluster"\s*value \{\s*s: "(\w+)"', node)
        nodes.append((op, cluster.group(1) if cluster else None))
    return nodes


def test_fusible_compiles_the_elementwise_ops_and_leaves_the_matmuls_to_tensorflow(tmp_path):
    # TensorFlow's own record of its clustering decisions, dumped by
    # --tf_xla_clustering_debug, for a real train step of transformer_lm.
    dump = tmp_path / "dump"
    dump.mkdir()
    result = run_python(f"""
        import glob, json
        import keraslm, keras, numpy as np
        model = keraslm.models.transformer_lm(vocabulary_size=64, max_sequence_length=16,
                                              **{MODEL!r})
        model.compile(optimizer="adamw", jit_compile=False,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ids = np.random.default_rng(0).integers(1, 64, (4, 16)).astype("int32")
        with keraslm.training.fusible_xla():
            model.train_on_batch(ids, ids)
        inside = set(glob.glob("{dump}/*"))
        # Outside the context auto-clustering is off again.
        keras.ops.convert_to_numpy(model.predict_on_batch(ids))
        print("AFTER", json.dumps(sorted(set(glob.glob("{dump}/mark_for_compilation*"))
                                         - inside)))
        """, TF_XLA_FLAGS="--tf_xla_clustering_debug", TF_DUMP_GRAPH_PREFIX=str(dump))
    assert result.returncode == 0, result.stderr[-3000:]
    annotated = glob.glob(str(dump / "mark_for_compilation_annotated*.pbtxt"))
    assert annotated, f"TensorFlow clustered nothing: {sorted(os.listdir(dump))[:20]}"
    nodes = clustered_ops(max(annotated, key=os.path.getsize))  # the train step
    inside = {op for op, cluster in nodes if cluster}
    outside = {op for op, cluster in nodes if not cluster}
    assert len({cluster for _, cluster in nodes if cluster}) >= 5
    # GELU, the layer norms' square roots and the optimizer's arithmetic are fused...
    assert {"Rsqrt", "Sqrt", "Mul", "AddV2"} <= inside, inside
    assert {"Erf", "Erfc"} & inside, inside
    # ...and no matrix product is: those run on TensorFlow's (oneDNN) kernels.
    matmuls = {"MatMul", "BatchMatMulV2", "Einsum"}
    assert not inside & matmuls, inside & matmuls
    assert "MatMul" in outside
    after = result.stdout.split("AFTER", 1)[1]
    new_files = json.loads(after)
    assert all(not any(cluster for _, cluster in clustered_ops(path))
               for path in new_files if "annotated" in path), new_files


def test_fusible_training_follows_the_same_losses_as_without_xla(corpus, tmp_path):
    assert _xla_flags.fusible_flags_active(), (
        "conftest imports keraslm before TensorFlow, so the flags should be set; "
        f"TF_XLA_FLAGS={os.environ.get('TF_XLA_FLAGS')!r}")
    losses, finals = {}, {}
    for mode in ("off", "fusible"):
        result = keraslm.train(task="lm", train=corpus["lm_train"], valid=corpus["lm_valid"],
                               tokenizer="character", sequence_length=32, batch_size=16,
                               steps=30, checkpoint_every=15, model_options=MODEL,
                               learning_rate=5e-3,
                               xla=mode, output_dir=str(tmp_path / mode), verbose=False)
        with open(os.path.join(result.run_dir, "steps.csv")) as handle:
            losses[mode] = [float(row["loss"]) for row in csv.DictReader(handle)]
        finals[mode] = result.metrics["final"]["loss"]
        with open(os.path.join(result.run_dir, "config.json")) as handle:
            assert json.load(handle)["config"]["xla"] == mode
    assert len(losses["off"]) == 30
    assert np.mean(losses["off"][-5:]) < losses["off"][0] - 0.5, losses["off"]  # it learned
    np.testing.assert_allclose(losses["fusible"], losses["off"], rtol=1e-4)
    np.testing.assert_allclose(finals["fusible"], finals["off"], rtol=1e-4)
    import tensorflow as tf

    assert tf.config.optimizer.get_jit() == ""  # auto-clustering restored to off


def test_fusible_is_refused_when_tensorflow_loaded_first(corpus, tmp_path):
    output = tmp_path / "run"
    result = run_python(f"""
        import tensorflow
        import keraslm
        keraslm.train(task="lm", train={corpus['lm_train']!r}, tokenizer="character",
                      steps=2, xla="fusible", output_dir={str(output)!r})
        """)
    assert result.returncode != 0
    assert "RuntimeError: xla='fusible' is not available" in result.stderr
    assert "tensorflow was imported before keraslm" in result.stderr
    assert "Import keraslm before keras and tensorflow" in result.stderr
    assert not output.exists()  # refused before anything was written


def test_prepare_adds_the_flags_only_while_tensorflow_is_not_loaded():
    environment = {"TF_XLA_FLAGS": "--tf_xla_clustering_debug"}
    assert _xla_flags.prepare(environment, modules={}) == _xla_flags.FUSIBLE_FLAGS
    assert environment["TF_XLA_FLAGS"] == ("--tf_xla_clustering_debug --tf_xla_cpu_global_jit "
                                           "--tf_xla_ops_to_cluster=FUSIBLE")
    assert _xla_flags.fusible_flags_active(environment)
    assert _xla_flags.prepare(environment, modules={}) == ()  # idempotent

    loaded = {}
    assert _xla_flags.prepare(loaded, modules={"tensorflow": object()}) == ()
    assert loaded == {} and not _xla_flags.fusible_flags_active(loaded)
    assert "tensorflow was imported before keraslm" in _xla_flags.inactive_reason(loaded)

    opted_out = {"KERASLM_TF_XLA_FLAGS": "0"}
    assert _xla_flags.prepare(opted_out, modules={}) == ()
    assert "TF_XLA_FLAGS" not in opted_out

    # A user's own choice of clustered ops wins.
    own = {"TF_XLA_FLAGS": "--tf_xla_ops_to_cluster=FUSIBLE,MatMul"}
    assert _xla_flags.prepare(own, modules={}) == ("--tf_xla_cpu_global_jit",)
    assert own["TF_XLA_FLAGS"].startswith("--tf_xla_ops_to_cluster=FUSIBLE,MatMul ")
    assert not _xla_flags.fusible_flags_active(own)
    _xla_flags.prepare()  # back to this process's real state


def test_xla_values_are_checked_in_python_and_on_the_command_line(corpus):
    with pytest.raises(ValueError, match=r"`xla` must be one of .*Received: xla='fast'"):
        TrainConfig(train=corpus["lm_train"], xla="fast").validate()
    for value in (True, False, "on", "off", "fusible"):
        TrainConfig(train=corpus["lm_train"], xla=value).validate()

    from keraslm.commands.train import config_from_args, configure

    parser = argparse.ArgumentParser()
    configure(parser)
    base = ["--train", corpus["lm_train"]]
    for flags, expected in (([], False), (["--xla"], True), (["--xla", "on"], True),
                            (["--xla", "fusible"], "fusible"), (["--xla", "off"], False),
                            (["--no-xla"], False)):
        assert config_from_args(parser.parse_args(base + flags)).xla == expected, flags
    result = subprocess.run([sys.executable, "-m", "keraslm", "train", *base,
                             "--xla", "fast"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "--xla takes on, off or fusible. Received: 'fast'" in result.stderr
