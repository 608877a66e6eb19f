"""Bad inputs × tasks through the `keraslm train` command line.

Each case writes its files, runs `keraslm train` in this process and
asserts what a user sees: a non-zero exit, no traceback, the file and line
(or the option and the value received) in the message, and no run directory
left behind, so the same command runs once the input is fixed. The good
files are slices of the real corpora (`corpus` fixture).
"""

import json
import os
import re

import pytest

from keraslm import cli

QA_GOOD = json.dumps({"question": "Who wrote it?", "context": "Shakespeare wrote it.",
                      "answer": "Shakespeare", "answer_start": 0})
CONLL = "The\tDET\ncat\tNOUN\n\nIt\tPRON\nran\tVERB\n"
PAIRS = "In the beginning\tEn el principio\nAnd God said\tY dijo Dios\n"
CSV = "text,label\ngood film,great\nbad film,other\n"

# (id, task, files written for the case, arguments, expected in the message)
# {name} in the arguments is a written file or a `corpus` file; {out} the run.
CASES = [
    # -- files, any task -----------------------------------------------------
    ("empty-lm", "lm", {"train.txt": ""}, ["--train", "{train.txt}"],
     ["train.txt' is empty (0 bytes)"]),
    ("whitespace-lm", "lm", {"train.txt": " \n\t\n  \n"}, ["--train", "{train.txt}"],
     ["train.txt' contains only whitespace (7 bytes)"]),
    ("undecodable-lm", "lm", {"train.txt": b"one\ntwo\nth\xe9ree\nfour\n"},
     ["--train", "{train.txt}"], ["not valid UTF-8", "line 3, column 3", "e9"]),
    # A directory or a glob is a corpus (every supported file in it); one that
    # names no file is refused.
    ("directory-no-text-lm", "lm", {"folder/a.bin": "x\n"}, ["--train", "{folder}"],
     ["folder' holds no supported file", ".txt, .csv, .tsv or .jsonl"]),
    ("glob-no-match-classify", "classify", {"folder/a.bin": "x\n"},
     ["--train", "{folder}/*.csv"], ["*.csv' matches no file", "a glob that matches"]),
    ("missing-lm", "lm", {}, ["--train", "{tmp}/nowhere.txt"],
     ["`train` file not found", "nowhere.txt"]),
    ("symlink-loop-lm", "lm", {"@loop.txt": "loop.txt"}, ["--train", "{loop.txt}"],
     ["loop.txt' is a symbolic link", "cannot be opened"]),
    ("empty-valid-lm", "lm", {"valid.txt": ""},
     ["--train", "{lm_train}", "--valid", "{valid.txt}"], ["valid.txt' is empty"]),
    ("undecodable-test-lm", "lm", {"test.txt": b"fine\n\xff\xfe broken\n"},
     ["--train", "{lm_train}", "--test", "{test.txt}"], ["test.txt", "line 2, column 1"]),
    ("mlm-missing-text-column", "mlm", {"train.jsonl": '{"body": "a text"}\n'},
     ["--train", "{train.jsonl}"], ["train.jsonl', line 1: no text column 'text'",
                                     "Columns found: body", "--text-column"]),
    # -- tables (classify) ---------------------------------------------------
    ("csv-extra-field", "classify", {"train.csv": CSV + "fine, really,great\n"},
     ["--train", "{train.csv}"], ["train.csv', line 4: row has 3 field(s), expected 2"]),
    ("csv-missing-field", "classify", {"train.csv": CSV + "no label here\n"},
     ["--train", "{train.csv}"], ["line 4: row has 1 field(s), expected 2"]),
    ("csv-no-label-column", "classify", {"train.csv": "text,lable\ngood,great\n"},
     ["--train", "{train.csv}"], ["line 1: no label column 'label'",
                                   "Did you mean 'lable'?"]),
    ("csv-empty-label", "classify", {"train.csv": CSV + "ok film,\n"},
     ["--train", "{train.csv}"], ["line 4: the label column 'label' is empty"]),
    ("csv-header-only", "classify", {"train.csv": "text,label\n"},
     ["--train", "{train.csv}"], ["train.csv' has a header but no rows"]),
    ("csv-unterminated-quote", "classify", {"train.csv": CSV + '"open quote,great\n'},
     ["--train", "{train.csv}"], ["train.csv', line 4: row has 1 field(s)", "is its closing quote missing?"]),
    ("undecodable-csv", "classify", {"train.csv": CSV.encode() + b"caf\xe9 film,great\n"},
     ["--train", "{train.csv}"], ["train.csv' is not valid UTF-8", "line 4"]),
    ("jsonl-broken-line", "classify",
     {"train.jsonl": '{"text": "a", "label": "x"}\n{"text": "b", "label": \n'},
     ["--train", "{train.jsonl}"], ["train.jsonl', line 2: not valid JSON"]),
    ("jsonl-not-object", "classify", {"train.jsonl": '{"text": "a", "label": "x"}\n[1, 2]\n'},
     ["--train", "{train.jsonl}"], ["line 2: expected a JSON object, received list"]),
    ("jsonl-text-not-string", "classify",
     {"train.jsonl": '{"text": "a", "label": "x"}\n{"text": ["b"], "label": "y"}\n'},
     ["--train", "{train.jsonl}"], ["line 2: the text column 'text' holds list",
                                     "Expected a string"]),
    ("jsonl-label-object", "classify",
     {"train.jsonl": '{"text": "a", "label": {"stars": 5}}\n'},
     ["--train", "{train.jsonl}"], ["line 1: the label column 'label' holds dict"]),
    ("unseen-valid-label", "classify", {"valid.csv": "text,label\nok,great\nmeh,neutral\n"},
     ["--train", "{reviews_train}", "--valid", "{valid.csv}"],
     ["Label 'neutral' (line 3 in", "valid.csv", "never seen in training"]),
    ("unseen-test-label", "classify", {"test.csv": "text,label\nok,grate\n"},
     ["--train", "{reviews_train}", "--test", "{test.csv}"],
     ["Label 'grate' (line 2 in", "test.csv", "Did you mean 'great'?"]),
    # -- CoNLL (tag, ner) ----------------------------------------------------
    ("conll-no-tab", "tag", {"train.conll": CONLL + "dog NOUN\n"},
     ["--train", "{train.conll}"], ["train.conll', line 6: expected 'token<TAB>tag'"]),
    ("conll-three-columns", "tag", {"train.conll": CONLL.replace("\n", "\tX\n", 1)},
     ["--train", "{train.conll}"], ["line 1: has 3 tab-separated columns, expected 2",
                                     "--tag-column N"]),
    ("conll-columns-change", "tag",
     {"train.conll": "The\tDT\tB-NP\ncat\tNN\n"},
     ["--train", "{train.conll}", "--tag-column", "1"],
     ["line 2: has 2 tab-separated columns, but line 1 has 3"]),
    ("conll-empty-tag", "tag", {"train.conll": CONLL + "dog\t\n"},
     ["--train", "{train.conll}"], ["line 6: empty token or tag"]),
    ("conll-undecodable", "tag", {"train.conll": CONLL.encode() + b"\nh\xe9\tX\n"},
     ["--train", "{train.conll}"], ["train.conll' is not valid UTF-8", "line 7"]),
    ("ner-bad-tag", "ner", {"train.conll": "John\tB-PER\nlives\tO\nRome\tB_LOC\n"},
     ["--train", "{train.conll}"], ["train.conll', line 3: 'B_LOC' is not an entity tag"]),
    ("ner-bad-scheme", "ner", {}, ["--train", "{brown_train}", "--scheme", "iob3"],
     ["iob3"]),
    # -- pairs (translate) ---------------------------------------------------
    ("pairs-no-tab", "translate", {"train.tsv": PAIRS + "Let there be light\n"},
     ["--train", "{train.tsv}"], ["train.tsv', line 3: expected 2 tab-separated columns",
                                   "received 1"]),
    ("pairs-three-columns", "translate", {"train.tsv": PAIRS + "a\tb\tc\n"},
     ["--train", "{train.tsv}"], ["line 3: expected 2 tab-separated columns",
                                   "received 3", "--source-column N"]),
    ("pairs-empty-target", "translate", {"train.tsv": PAIRS + "Light\t \n"},
     ["--train", "{train.tsv}"], ["line 3: empty target"]),
    ("translate-scores", "translate", {"train.tsv": PAIRS},
     ["--train", "{train.tsv}", "--scores", "bleu,meteor"],
     ["`scores` must be a comma-separated list of bleu, chrf, rouge",
      "Received: scores='bleu,meteor'"]),
    ("translate-decode-examples", "translate", {"train.tsv": PAIRS},
     ["--train", "{train.tsv}", "--decode-examples", "-1"],
     ["`decode_examples` must be an integer >= 0 (0: no scores)", "Received: decode_examples=-1"]),
    # -- qa --------------------------------------------------------------------
    ("qa-broken-json", "qa", {"train.jsonl": QA_GOOD + "\n{\"question\": \n"},
     ["--train", "{train.jsonl}"], ["train.jsonl:2: not valid JSON"]),
    ("qa-undecodable", "qa", {"train.jsonl": (QA_GOOD + "\n").encode() + b'{"q\xe9"}\n'},
     ["--train", "{train.jsonl}"], ["train.jsonl' is not valid UTF-8", "line 2"]),
    ("qa-empty", "qa", {"train.jsonl": ""}, ["--train", "{train.jsonl}"],
     ["train.jsonl' is empty (0 bytes)"]),
    ("qa-missing-field", "qa", {"train.jsonl": '{"question": "Who?", "context": "Me."}\n'},
     ["--train", "{train.jsonl}"], ["train.jsonl:1: missing field(s) ['answer']"]),
    # -- run.toml --------------------------------------------------------------
    ("toml-invalid", "lm", {"run.toml": "steps = = 3\n"},
     ["--train", "{lm_train}", "--config", "{run.toml}"], ["run.toml is not valid TOML",
                                                           "line 1"]),
    ("toml-wrong-type", "lm", {"run.toml": 'batch_size = "8"\n'},
     ["--train", "{lm_train}", "--config", "{run.toml}"],
     ["`batch_size` must be a positive integer", "Received: batch_size='8'"]),
    ("toml-bool-for-number", "lm", {"run.toml": "learning_rate = true\n"},
     ["--train", "{lm_train}", "--config", "{run.toml}"],
     ["`learning_rate` must be a positive number", "Received: learning_rate=True"]),
    ("toml-unknown-key", "lm", {"run.toml": "step = 3\n"},
     ["--train", "{lm_train}", "--config", "{run.toml}"], ["'step'", "Did you mean 'steps'?"]),
    ("toml-model-option", "lm", {"run.toml": "[model_options]\nnum_layer = 1\n"},
     ["--train", "{lm_train}", "--config", "{run.toml}"],
     ["Unknown option 'num_layer' in `model_options`", "Did you mean 'num_layers'?"]),
    ("toml-head-option", "classify", {"run.toml": "[head_options]\ndropuot = 0.1\n"},
     ["--train", "{reviews_train}", "--config", "{run.toml}"],
     ["Unknown option 'dropuot' in `head_options` of head 'classification'",
      "Did you mean 'dropout'?"]),
    ("toml-optimizer-option", "lm", {"run.toml": "[optimizer_options]\nbeta1 = 0.9\n"},
     ["--train", "{lm_train}", "--config", "{run.toml}"],
     ["Unknown option 'beta1' in `optimizer_options` of optimizer 'adamw'",
      "Did you mean 'beta_1'?"]),
    ("toml-tokenizer-option", "lm",
     {"run.toml": 'tokenizer = "character"\n[tokenizer_options]\nmin_frequncy = 2\n'},
     ["--train", "{lm_train}", "--config", "{run.toml}"],
     ["Unknown option 'min_frequncy' in `tokenizer_options` of tokenizer 'character'",
      "Did you mean 'min_frequency'?"]),
    ("toml-head-sets-num-classes", "classify", {"run.toml": "[head_options]\nnum_classes = 3\n"},
     ["--train", "{reviews_train}", "--config", "{run.toml}"],
     ["`head_options` sets 'num_classes', which keraslm sets itself"]),
    # -- out-of-domain and misspelled values ------------------------------------
    ("negative-clipnorm", "lm", {}, ["--train", "{lm_train}", "--global-clipnorm", "-1"],
     ["`global_clipnorm` must be a positive number", "Received: global_clipnorm=-1.0"]),
    ("zero-learning-rate", "lm", {}, ["--train", "{lm_train}", "--learning-rate", "0"],
     ["`learning_rate` must be a positive number", "Received: learning_rate=0.0"]),
    ("validation-fraction", "lm", {}, ["--train", "{lm_train}", "--validation-fraction", "1.5"],
     ["`validation_fraction`", "1.5"]),
    ("zero-checkpoint-every", "lm", {}, ["--train", "{lm_train}", "--checkpoint-every", "0"],
     ["`checkpoint_every`", "Received: checkpoint_every=0"]),
    ("max-sequence-length", "lm", {"run.toml": "[model_options]\nmax_sequence_length = 16\n"},
     ["--train", "{lm_train}", "--sequence-length", "32", "--config", "{run.toml}"],
     ["must be at least `sequence_length`=32", "Received: max_sequence_length=16"]),
    ("unknown-tokenizer", "lm", {}, ["--train", "{lm_train}", "--tokenizer", "wordpeice"],
     ["'wordpeice'", "Did you mean 'wordpiece'?"]),
    ("unknown-model", "lm", {}, ["--train", "{lm_train}", "--model", "transformer_llm"],
     ["Unknown model 'transformer_llm'", "Did you mean 'transformer_lm'?"]),
    ("unknown-task", "tagg", {}, ["--train", "{brown_train}"], ["'tagg'", "Did you mean 'tag'?"]),
    ("precision", "lm", {}, ["--train", "{lm_train}", "--precision", "float8"],
     ["`precision`", "float8"]),
    ("time-budget-unparsed", "lm", {}, ["--train", "{lm_train}", "--time-budget", "soon"],
     ["`time_budget` must be a positive duration such as 90s, 10m or 1.5h",
      "Received: time_budget='soon'"]),
    ("time-budget-negative", "lm", {}, ["--train", "{lm_train}", "--time-budget=-5m"],
     ["`time_budget` must be a positive duration", "'-5m'"]),
    # Every case here also passes --steps 2: a budget with steps is refused.
    ("time-budget-and-steps", "classify", {}, ["--train", "{reviews_train}",
                                               "--time-budget", "2m"],
     ["give `steps` or `time_budget`, not both", "steps=2, time_budget='2m'"]),
    ("flag-type", "lm", {}, ["--train", "{lm_train}", "--batch-size", "eight"],
     ["--batch-size", "invalid int value: 'eight'"]),
]


def _write(root, files):
    for name, content in files.items():
        if name.startswith("@"):  # a symbolic link to the content
            os.symlink(content, root / name[1:])
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def test_at_least_forty_cases_over_every_task():
    assert len(CASES) >= 40
    assert {"lm", "mlm", "classify", "tag", "ner", "translate", "qa"} <= {c[1] for c in CASES}


@pytest.mark.parametrize("task, files, arguments, expected",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line_and_leaves_nothing(corpus, tmp_path, capsys, task,
                                                        files, arguments, expected):
    _write(tmp_path, files)
    out = tmp_path / "run"
    names = {**corpus, "tmp": str(tmp_path), "out": str(out),
             **{name.lstrip("@").split("/")[0]: str(tmp_path / name.lstrip("@").split("/")[0])
                for name in files}}
    argv = ["train", "--task", task, "--steps", "2", "--quiet", "-o", str(out),
            *[re.sub(r"\{([^}]+)\}", lambda m: names[m.group(1)], argument)
              for argument in arguments]]
    try:
        status = cli.main(argv)
    except SystemExit as exit:  # argparse: a flag's value of the wrong type
        status = exit.code
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert status not in (0, None), shown[-2000:]
    assert "Traceback" not in shown
    assert "unexpected error" not in shown, shown[-2000:]  # a user error, not a bug
    for part in expected:
        assert part in shown, (part, shown[-2000:])
    assert not out.exists(), sorted(os.listdir(out))
