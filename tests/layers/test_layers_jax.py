"""Runs the layer parity and causality tests again with KERAS_BACKEND=jax.

The layers use `keras.ops` only, so they must give the same results on JAX
(the backend of the accelerator machine). The backend is chosen when Keras
is imported, hence a subprocess. The three files under JAX take about
two minutes on 2 CPU cores, in one subprocess, marked slow.
"""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPOSITORY = HERE.parent.parent


def run_pytest_under_jax(*test_files):
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
        *[str(HERE / name) for name in test_files],
    ]
    result = subprocess.run(
        command, cwd=REPOSITORY, env=environment, capture_output=True,
        text=True, timeout=900,
    )
    assert result.returncode == 0, (
        f"pytest under KERAS_BACKEND=jax failed:\n{result.stdout[-8000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    assert " passed" in result.stdout and "skipped" not in result.stdout, (
        result.stdout[-2000:]
    )


@pytest.mark.slow
def test_layer_parity_causality_and_checks_under_jax():
    # One subprocess for the three files: each start imports JAX, Keras,
    # keras-hub and keraslm again (two starts took 97 + 71 s of CI).
    run_pytest_under_jax("test_layer_parity.py", "test_layer_causality.py",
                         "test_layer_checks.py")
