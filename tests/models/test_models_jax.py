"""Runs model-builder tests again with KERAS_BACKEND=jax.

The builders are made of `keras.ops`-only layers, so their causality,
cached decoding, padding and `.keras` round trip must hold on JAX too (the
backend of the accelerator machine). The backend is chosen when Keras is
imported, hence a subprocess; `test_runs_on_the_requested_backend` runs with
it so a silently ignored `KERAS_BACKEND` fails.
"""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent

# A subset of test_models.py that keeps the subprocess well under a minute.
SELECTED = (
    "test_transformer_lm_is_causal_and_cache_matches",
    "test_seq2seq_cache_matches_full_decoding",
    "test_padding_does_not_change_real_tokens",
    "test_keras_round_trip",
)


def test_models_under_jax():
    if os.environ.get("KERAS_BACKEND") == "jax":
        pytest.skip("Already running under the JAX backend")
    pytest.importorskip("jax")
    environment = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "KERASLM_EXPECTED_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
    }
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-W", "ignore::DeprecationWarning",
        str(HERE / "test_models.py"),
        "-k", " or ".join((*SELECTED, "test_runs_on_the_requested_backend")),
        str(HERE.parent / "layers" / "test_layer_causality.py")
        + "::test_runs_on_the_requested_backend",
    ]
    result = subprocess.run(
        command, cwd=REPOSITORY, env=environment, capture_output=True,
        text=True, timeout=600,
    )
    assert result.returncode == 0, (
        f"pytest under KERAS_BACKEND=jax failed:\n{result.stdout[-8000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, result.stdout[-2000:]
    # 6 causality/cache + 1 seq2seq cache + 4 padding + 4 round trips + backend.
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 16, result.stdout[-2000:]
