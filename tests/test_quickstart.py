"""`keraslm quickstart` as a user runs it: every stage in order, the
bits-per-character ceiling the README quotes, a sample made of words of
the corpus, every installed exporter checked, and none of TensorFlow's,
absl's or the converters' start-up messages on the terminal."""

import json
import os
import re
import subprocess
import sys

import pytest

import shared_data

CEILING = 2.5  # validation bits per character the README promises
# Lines a user cannot act on (issue: the main job as a first impression).
NOISE = (
    "failed call to cuInit",
    "Could not find cuda drivers",
    "absl::InitializeLog",
    "oneDNN custom operations",
    "CollectionDef",
    "'NoneType' object has no attribute 'name'",
    "WARNING:tensorflow",
    "rebuild TensorFlow with the appropriate compiler flags",
    "I0000 ",
    "E0000 ",
    "W0000 ",
    "Traceback",
)
STAGES = ("data", "train", "evaluate", "generate", "export")


def _quickstart(*args, cwd=None):
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "KERASLM_DEBUG")}
    return subprocess.run([sys.executable, "-m", "keraslm", "quickstart", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=1200)


@pytest.mark.slow
def test_quickstart_shows_every_stage_cleanly_and_reaches_its_target(tmp_path):
    from keraslm import registry
    from keraslm.commands.quickstart import SAMPLE

    train = shared_data.path("shakespeare", "train.txt")
    valid = shared_data.path("shakespeare", "valid.txt")
    output = tmp_path / "qs"
    result = _quickstart("--train", train, "--valid", valid, "-o", output)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    stdout = result.stdout

    # Nothing from TensorFlow & co on the terminal; it is kept in the log.
    for line in NOISE:
        assert line not in stdout and line not in result.stderr, line
    assert result.stderr == ""
    log = (output / "quickstart.log").read_text()
    assert "cuda" in log.lower() or "absl" in log  # captured, not absent
    assert not list(tmp_path.glob("*.quickstart.log"))  # moved into the run

    # Stages in order, then the summary.
    headers = [stdout.index(f"== {index}/5 {name}:")
               for index, name in enumerate(STAGES, 1)]
    assert headers == sorted(headers)
    assert stdout.index("== summary") > headers[-1]

    # The evaluation table shows what metrics.json holds, under the ceiling.
    final = json.loads((output / "metrics.json").read_text())["final"]
    assert final["bits_per_character"] <= CEILING, final
    evaluate = stdout[headers[2]:headers[3]]
    assert f"{final['bits_per_character']:.4f}" in evaluate
    assert "perplexity" in evaluate

    # The sample is made of the corpus' words (reads as English, not
    # "wentect for's mon moulove"), and it is as long as asked.
    sample = stdout[headers[3]:headers[4]].split("\n", 1)[1]
    sample = sample.split("attention of the first")[0]  # then the picture's path
    words = re.findall(r"[a-z']+", sample.lower())
    known = set(re.findall(r"[a-z']+", train.read_text().lower()))
    assert len(words) >= SAMPLE["max_new_tokens"] // 3
    assert sum(word in known for word in words) / len(words) >= 0.85, sample

    # Every installed exporter that takes an lm run wrote its file and
    # reported its parity check.
    export = stdout[headers[4]:stdout.index("== summary")]
    for name in registry.exporters.names():
        tasks = registry.exporters.get(name).metadata.get("tasks")
        if tasks is None or "lm" in tasks:
            assert f"{name}: " in export and "FAILED" not in export, export
    assert export.count("max |diff|") >= 2
    assert (output / "training_curve.png").stat().st_size > 10_000


def test_quickstart_refuses_bad_input_before_loading_anything(tmp_path):
    result = _quickstart("--train", tmp_path / "missing.txt", "-o", tmp_path / "qs")
    assert result.returncode != 0
    assert "--train must be an existing text file" in result.stderr
    assert "missing.txt" in result.stderr
    assert not (tmp_path / "qs").exists()
    result = _quickstart("--steps", "0")
    assert result.returncode != 0 and "positive integer" in result.stderr
    help_text = _quickstart("--help").stdout
    for flag in ("--steps", "--train", "--output"):
        assert flag in help_text
