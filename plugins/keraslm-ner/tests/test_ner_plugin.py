"""keraslm-ner: found by its entry point, its option on the command line, and
bad entity tags refused with the file and line before any training."""

import argparse
import importlib.metadata
import os
import subprocess
import sys

import pytest

import keraslm
from keraslm.tasks.tag import TaggingOptions, TaggingTask
from keraslm.training import TrainConfig
from keraslm_ner.task import EntityTask

GOOD = "John\tB-PER\nSmith\tI-PER\nsaw\tO\nParis\tB-LOC\n\nHe\tO\nleft\tO\n"


def test_registered_through_the_entry_point():
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="keraslm")
                     if ep.name == "ner"]
    assert entry_point.dist.name == "keraslm-ner"
    assert entry_point.value == "keraslm_ner"
    component = keraslm.registry.tasks.get("ner")
    assert component.plugin == "ner"
    assert component.load() is EntityTask
    for name in ("entity_precision", "entity_recall", "entity_f1"):
        assert keraslm.registry.metrics.get(name).plugin == "ner"


def test_listing_the_task_stays_light():
    """`keraslm train --help` imports every task to list its options."""
    script = ("import sys, keraslm\n"
              "keraslm.registry.tasks.get('ner').load()\n"
              "keraslm.list_plugins(include_builtins=True)\n"
              "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", script], capture_output=True,
                                text=True, check=True).stdout.split())
    assert "keraslm_ner.task" in loaded
    assert not loaded & {"tensorflow", "keras", "keras_hub", "keraslm_ner.metrics"}


def test_ner_extends_the_tag_task():
    assert issubclass(EntityTask, TaggingTask)
    assert issubclass(EntityTask.Options, TaggingOptions)
    assert EntityTask.option_names() == ["token_column", "tag_column", "scheme"]
    assert EntityTask.head == TaggingTask.head == "token_classification"


def test_train_help_lists_the_scheme_option():
    from keraslm.commands import train

    parser = argparse.ArgumentParser(prog="keraslm train")
    train.configure(parser)
    help_text = " ".join(parser.format_help().split())
    assert "options of task ner:" in help_text
    assert ("--scheme SCHEME entity tags of the tag column: iob2 (= bio) or iob1; "
            "stored as iob2 (default: iob2)") in help_text
    args = parser.parse_args(["--task", "ner", "--train", "README.md", "--scheme", "iob1",
                              "--tag-column", "1"])
    config = train.config_from_args(args)
    assert config.task == "ner"
    assert config.task_options == {"scheme": "iob1", "tag_column": 1}


def test_scheme_is_an_option_of_ner_only():
    config = TrainConfig.from_dict({"task": "ner", "train": "README.md", "scheme": "bio"})
    assert config.task_options == {"scheme": "bio"}
    with pytest.raises(ValueError, match=r"'scheme' .* belongs to task\(s\) ner, not to "
                                         r"task 'tag'"):
        TrainConfig.from_dict({"task": "tag", "train": "README.md", "scheme": "iob1"})


def test_unknown_scheme_is_refused_before_reading(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(GOOD)
    with pytest.raises(ValueError, match=r"`scheme` must be one of iob2, bio, iob1 .*"
                                         r"Received: scheme='bilou'"):
        TrainConfig(task="ner", train=str(path), task_options={"scheme": "bilou"}).validate()


def read(tmp_path, text, **options):
    path = tmp_path / "bad.conll"
    path.write_text(text)
    task = EntityTask(TrainConfig(task="ner", train=str(path), task_options=options))
    return task.read(str(path))


@pytest.mark.parametrize("text, line, message", [
    (GOOD + "Rome\tX-LOC\n", 8, "'X-LOC' is not an entity tag. Expected 'O', 'B-TYPE' or "
                                "'I-TYPE'"),
    (GOOD.replace("Paris\tB-LOC", "Paris\tLOC"), 4, "'LOC' is not an entity tag"),
    (GOOD.replace("Paris\tB-LOC", "Paris\tb-loc"), 4, "'b-loc' is not an entity tag"),
    (GOOD.replace("Paris\tB-LOC", "Paris\tI-LOC"), 4,
     r"'I-LOC' \(after 'O'\) continues no LOC entity; in IOB2 \(BIO\) every entity "
     r"starts with B-. Expected 'B-LOC' here; if the file is IOB1"),
], ids=["X-prefix", "no-prefix", "lower-case", "I-after-O"])
def test_malformed_tags_are_refused_with_file_and_line(tmp_path, text, line, message):
    with pytest.raises(keraslm.data.DataError, match=message) as info:
        read(tmp_path, text)
    error = info.value
    assert str(error).startswith(f"File '{tmp_path / 'bad.conll'}', line {line}: ")
    assert (error.path, error.line) == (str(tmp_path / "bad.conll"), line)
    word, tag = text.split("\n")[line - 1].split("\t")
    assert f"Received: word {word!r}, tag {tag!r} (tag_column=-1, scheme=iob2)" in str(error)


def test_iob1_files_are_read_as_iob2(tmp_path):
    iob1 = GOOD.replace("John\tB-PER", "John\tI-PER").replace("Paris\tB-LOC", "Paris\tI-LOC")
    with pytest.raises(keraslm.data.DataError, match="line 1: 'I-PER'"):
        read(tmp_path, iob1)
    examples = read(tmp_path, iob1, scheme="iob1")
    assert examples.tags == [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    assert examples.lines == [1, 6]
    # The tag column is the tag task's option: here the second of three columns.
    rows = []
    for line in GOOD.split("\n"):
        word, tag = line.split("\t") if line else ("", "")
        rows.append(f"{word}\t{tag}\tNNP" if line else "")
    examples = read(tmp_path, "\n".join(rows), tag_column=1)
    assert examples.tags[0] == ["B-PER", "I-PER", "O", "B-LOC"]
    # Three columns and none named: refused, not read as tags from the last.
    with pytest.raises(keraslm.data.DataError, match=r"line 1: has 3 tab-separated columns, "
                                                    r"expected 2 .* --tag-column N"):
        read(tmp_path, "\n".join(rows))


def test_a_bad_tag_stops_training_before_it_starts(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(GOOD * 20 + "Rome\tB_LOC\n")
    output = tmp_path / "run"
    with pytest.raises(keraslm.data.DataError, match=r"train.conll', line 141: 'B_LOC'"):
        keraslm.train(task="ner", train=str(path), tokenizer="word", steps=5,
                      output_dir=str(output), verbose=False)
    assert not os.path.exists(output / "model.keras")
    assert not any(name.endswith(".keras") for _, _, files in os.walk(tmp_path)
                   for name in files)
