"""The examples run end to end (their --quick smoke runs) on the real corpora."""

import os
import subprocess
import sys

import pytest

import shared_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.parametrize("script", ["shakespeare_lm.py", "reviews_classify.py",
                                    "brown_pos.py"])
def test_example_quick_run(script, tmp_path):
    results_before = sorted(os.listdir(os.path.join(ROOT, "examples", "results")))
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", script), "--quick",
         "--data", str(shared_data.DATA_DIR), "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    produced = [name for _, _, names in os.walk(tmp_path) for name in names]
    assert "metrics.json" in produced
    # A smoke run never overwrites the committed full-run results.
    assert sorted(os.listdir(os.path.join(ROOT, "examples", "results"))) == results_before
