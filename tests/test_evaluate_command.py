"""`keraslm evaluate`: tables by default, `--json`, `evaluation.json` and a
task's evaluation files in the run directory, bad input refused before the
model loads. In process (`keraslm.cli.main`), on the session's small tag run
on entity tags (`entity_tag_run` in conftest.py); `tests/training/
test_workflow.py` runs the command as a subprocess on an lm run."""

import io
import json
import os

import pytest

from keraslm import cli
from keraslm.commands.evaluate import print_metrics, write_evaluation


def evaluate(capsys, *args):
    status = cli.main(["evaluate", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_rows(text, title=None):
    """The cells of the body rows of the rich table under the line `title`
    (None: the first table)."""
    lines = text.splitlines()
    start = 0 if title is None else next(
        i for i, line in enumerate(lines) if line.strip() == title) + 1
    rows = []
    for line in lines[start:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def test_evaluate_prints_tables_and_writes_evaluation_json(entity_tag_run, capsys):
    result = entity_tag_run["result"]
    final = result.metrics["final"]
    status, out, err = evaluate(capsys, result.run_dir)
    assert status == 0, err
    # The metric | value table: every single number under its name, 4 decimals.
    main = {row[0]: row[1] for row in table_rows(out)}
    for name in ("loss", "accuracy", "macro_f1", "entity_precision", "entity_recall",
                 "entity_f1", "entity_macro_f1"):
        assert main[name] == f"{final[name]:.4f}", (name, main, final)
    assert main["entities"] == "374" and main["words"] == str(final["words"])
    # The per-type table: a row per entity type.
    per_type = {row[0]: row[1:] for row in table_rows(out, "per_type")}
    assert set(per_type) == {"NAME", "GROUP"}
    name = final["per_type"]["NAME"]
    assert per_type["NAME"] == [f"{name['precision']:.4f}", f"{name['recall']:.4f}",
                                f"{name['f1']:.4f}", str(name["support"])]
    path = os.path.join(result.run_dir, "evaluation.json")
    assert f"metrics written to {path}" in out
    saved = json.load(open(path))
    assert saved["data"] == entity_tag_run["valid"] and saved["checkpoint"] == "final"
    # The saved run scores what the trainer recorded for it.
    assert saved["metrics"]["entity_f1"] == pytest.approx(final["entity_f1"], abs=1e-9)
    for kind, row in final["per_type"].items():
        assert saved["metrics"]["per_type"][kind] == pytest.approx(row, abs=1e-9)

    status, out, err = evaluate(capsys, result.run_dir, "--json", "--checkpoint", "best")
    assert status == 0, err
    printed = json.loads(out)  # stdout holds the JSON alone
    assert f"metrics written to {path}" in err
    saved = json.load(open(path))
    assert saved["metrics"] == printed and saved["checkpoint"] == "best"
    assert printed["entity_f1"] == pytest.approx(result.metrics["best"]["entity_f1"],
                                                 abs=1e-9)


def test_task_evaluation_files_are_written_to_the_run(entity_tag_run, capsys, monkeypatch,
                                                      tmp_path):
    """A task that sets `evaluation_files` (as translate does with its
    translations) gets each written into the run directory; others none."""
    from keraslm.tasks.tag import TaggingTask

    evaluate_tags = TaggingTask.evaluate

    def evaluate_and_keep_tags(self, model, examples, tokenizer, loss=None):
        gold, predicted, _, _ = self.predict_tags(model, examples, tokenizer)
        self.evaluation_files = {"tags.txt": "".join(" ".join(p) + "\n" for p in predicted)}
        return evaluate_tags(self, model, examples, tokenizer, loss)

    monkeypatch.setattr(TaggingTask, "evaluate", evaluate_and_keep_tags)
    run_dir = entity_tag_run["result"].run_dir
    valid = tmp_path / "three.conll"  # --data: the first 3 validation sentences
    valid.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)) + "\n"
                             for words, tags in entity_tag_run["valid_sentences"][:3]))
    status, out, err = evaluate(capsys, run_dir, "--data", valid)
    assert status == 0, err
    path = os.path.join(run_dir, "tags.txt")
    assert f"tags.txt written to {path}" in out
    lines = open(path).read().splitlines()
    assert [len(line.split()) for line in lines] == [
        len(words) for words, _ in entity_tag_run["valid_sentences"][:3]]
    assert json.load(open(os.path.join(run_dir, "evaluation.json")))["data"] == str(valid)


def test_bad_input_fails_before_the_model_loads(entity_tag_run, capsys, monkeypatch,
                                                tmp_path):
    from keraslm.training import RunDirectory

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(RunDirectory, "load_model", no_model)
    run_dir = entity_tag_run["result"].run_dir
    evaluation = os.path.join(run_dir, "evaluation.json")
    before = open(evaluation).read() if os.path.exists(evaluation) else None
    missing = tmp_path / "missing.conll"
    status, out, err = evaluate(capsys, run_dir, "--data", missing)
    assert status == 1 and out == ""
    assert err.strip() == (f"keraslm evaluate: error: --data {missing}: no such file or "
                           f"directory. Expected the file to evaluate on (or a directory, "
                           f"or a glob).")
    malformed = tmp_path / "bad.conll"
    malformed.write_text("John\tB-NAME\nsaw\n")
    status, out, err = evaluate(capsys, run_dir, "--data", malformed)
    assert status == 1 and "bad.conll', line 2: expected 'token<TAB>tag'" in err, err
    status, out, err = evaluate(capsys, tmp_path, "--data", malformed)
    assert status == 1 and "not a keraslm run directory" in err, err
    after = open(evaluation).read() if os.path.exists(evaluation) else None
    assert after == before  # nothing written


def render(metrics, **options):
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, highlight=False)
    print_metrics(metrics, console=console, **options)
    return console.file.getvalue()


def test_classification_report_as_tables_with_a_confusion_grid():
    """classify's metrics: the per-class table and the confusion matrix as a
    grid with the label names (rows true, columns predicted)."""
    import numpy as np

    from keraslm.evaluation import classification_metrics

    true = [0, 1, 1, 2, 2, 2]
    report = classification_metrics(true, np.eye(3)[[0, 0, 1, 2, 2, 1]],
                                    labels=["ham", "spam", "[neutral]"])
    metrics = {"loss": 0.25, "accuracy": report["accuracy"],
               "micro_f1": report["micro"]["f1"], "roc_auc": None,
               "per_class": report["per_class"],
               "confusion_matrix": report["confusion_matrix"], "labels": report["labels"],
               "examples": 6}
    text = render(metrics, title="classify run runs/x (final) on test.csv")
    assert text.splitlines()[0] == "classify run runs/x (final) on test.csv"
    assert {row[0]: row[1] for row in table_rows(text)} == {
        "loss": "0.2500", "accuracy": "0.6667", "micro_f1": "0.6667", "roc_auc": "n/a",
        "examples": "6"}
    per_class = {row[0]: row[1:] for row in table_rows(text, "per_class")}
    assert per_class["spam"] == ["0.5000", "0.5000", "0.5000", "2", "0.6250"]
    # Labels are shown as written (rich markup such as [neutral] is escaped).
    assert table_rows(text, "confusion_matrix") == [
        ["ham", "1", "0", "0"], ["spam", "1", "1", "0"], ["[neutral]", "0", "1", "2"]]
    header = next(line for line in text.splitlines() if "true \\ predicted" in line)
    assert [cell.strip() for cell in header.split("┃")[2:5]] == ["ham", "spam", "[neutral]"]


def test_other_values_are_shown_too():
    """Nested scores of a plugin task, lists, small and integer numbers."""
    import numpy as np

    text = render({"bleu": {"score": 17.25, "brevity_penalty": 0.9},
                   "tokens": np.int64(12), "tiny": 1.5e-5, "lengths": [3, 4]})
    main = {row[0]: row[1] for row in table_rows(text)}
    assert main == {"tokens": "12", "tiny": "1.500e-05", "lengths": "[3, 4]"}
    assert table_rows(text, "bleu") == [["score", "17.2500"],
                                        ["brevity_penalty", "0.9000"]]


@pytest.mark.parametrize("name", ["../escape.txt", "sub/file.txt", "config.json",
                                  "evaluation.json", "checkpoints", ""])
def test_evaluation_file_names_are_checked(tmp_path, name):
    with pytest.raises(ValueError, match="plain file names other than the run's own"):
        write_evaluation(str(tmp_path), {"accuracy": 1.0}, files={name: "x"})
    assert not os.path.exists(tmp_path / "evaluation.json")


def test_evaluation_files_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match=r"must be a dict \{file name: text\}. "
                                        r"Received: list"):
        write_evaluation(str(tmp_path), {}, files=["translations.txt"])
    written = write_evaluation(str(tmp_path), {"bleu": 1.0}, data="test.tsv",
                               checkpoint="final", files={"out.txt": "hola\n"})
    assert written == {"metrics": str(tmp_path / "evaluation.json"),
                       "out.txt": str(tmp_path / "out.txt")}
    assert json.load(open(written["metrics"])) == {
        "data": "test.tsv", "checkpoint": "final", "metrics": {"bleu": 1.0}}
    assert open(written["out.txt"]).read() == "hola\n"
