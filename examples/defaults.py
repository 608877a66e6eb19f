"""Each task with nothing but its files and a time budget (the `auto` defaults).

`keraslm.train(task=T, train=F, valid=V or test=T, time_budget=...)` per
task on the shared data, each beside its classical reference computed here:

| task | data | metric | reference | target |
|---|---|---|---|---|
| classify | reviews train.csv / test.csv | test accuracy | TF-IDF (1-2 grams) + LR | >= 80.4% |
| tag | brown train.conll / test.conll | test word accuracy | most frequent tag per word | >= 94% |
| lm | shakespeare train.txt / valid.txt, scored on test.txt | test bits/char | xz -9e of test given train | <= 2.3 |
| translate | bible_en_es train.tsv / valid.tsv | validation BLEU (200 verses, greedy) | the most frequent target for every verse | (no target) |

Every run gets `--minutes` (10 by default) for the whole of `keraslm.train`:
data, tokenizer, training, validation and the final evaluation. The choices
each run made are in its `config.json` (`derived.auto`) and in the results.

    .venv/bin/python examples/defaults.py                 # 4 x 10 minutes
    .venv/bin/python examples/defaults.py --only classify tag --minutes 5
    .venv/bin/python examples/defaults.py --quick         # 4 x 75 s smoke run
"""

import collections
import csv
import lzma
import os

import _common

from keraslm.evaluation.baselines import tfidf_logistic_regression, xz_bits_per_character

NAME = "defaults"
TASKS = ("classify", "tag", "lm", "translate")


def most_frequent_tag(train_path, test_path):
    from keraslm import data

    train, test = data.read_conll(train_path), data.read_conll(test_path)
    per_word, overall = collections.defaultdict(collections.Counter), collections.Counter()
    for words, tags in zip(train.tokens, train.tags):
        for word, tag in zip(words, tags):
            per_word[word.lower()][tag] += 1
            overall[tag] += 1
    default = overall.most_common(1)[0][0]
    pairs = [(w.lower(), t) for words, tags in zip(test.tokens, test.tags)
             for w, t in zip(words, tags)]
    return sum((per_word[w].most_common(1)[0][0] if w in per_word else default) == t
               for w, t in pairs) / len(pairs)


def constant_translation_bleu(train_path, valid_path, count=200):
    import sacrebleu

    from keraslm import data

    train, valid = data.read_pairs(train_path), data.read_pairs(valid_path)
    constant = collections.Counter(train.targets).most_common(1)[0][0]
    return sacrebleu.corpus_bleu([constant] * count, [valid.targets[:count]]).score


def run_task(args, task, root, minutes):
    import keraslm
    from keraslm.training import load_run
    from keraslm.training.run import build_loss

    path = lambda *parts: _common.data_file(args, *parts)  # noqa: E731
    if task == "classify":
        files = dict(train=path("reviews", "train.csv"), test=path("reviews", "test.csv"))
        reference = ("TF-IDF + LR accuracy", tfidf_logistic_regression(
            files["train"], files["test"]))
        target = ("accuracy >=", 0.804)
    elif task == "tag":
        files = dict(train=path("brown", "train.conll"), test=path("brown", "test.conll"))
        reference = ("most-frequent-tag accuracy", most_frequent_tag(
            files["train"], files["test"]))
        target = ("accuracy >=", 0.94)
    elif task == "lm":
        files = dict(train=path("shakespeare", "train.txt"),
                     valid=path("shakespeare", "valid.txt"))
        reference = ("xz bits/char of test.txt given train.txt", xz_bits_per_character(
            files["train"], path("shakespeare", "test.txt")))
        target = ("bits_per_character <=", 2.3)
    else:
        files = dict(train=path("bible_en_es", "train.tsv"),
                     valid=path("bible_en_es", "valid.tsv"))
        reference = ("BLEU of the most frequent target for every verse",
                     constant_translation_bleu(files["train"], files["valid"]))
        target = None
    run_dir = os.path.join(root, task)
    with _common.Timer() as timer:
        result = keraslm.train(task=task, **files, time_budget=f"{minutes}m",
                               output_dir=run_dir, seed=args.seed)
    metrics = result.metrics
    if task == "lm":  # scored on the test text (the run validated on valid.txt)
        config, task_object, model, tokenizer = load_run(run_dir)
        scored = task_object.evaluate(model, task_object.read(path("shakespeare", "test.txt")),
                                      tokenizer, build_loss(config, task_object))
        value = scored["bits_per_character"]
        metric = "test bits_per_character"
    elif task == "translate":
        value, metric = metrics["final"].get("bleu"), "validation BLEU (greedy)"
    else:
        value, metric = metrics["test"]["accuracy"], "test accuracy"
    reached = None
    if target is not None:
        reached = value >= target[1] if ">=" in target[0] else value <= target[1]
    info = result.config.to_dict()
    import json

    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
        chosen = json.load(handle)["derived"].get("auto", {}).get("chosen", [])
    return {
        "task": task, "run_dir": run_dir, "metric": metric, "value": round(value, 4),
        "reference": {"name": reference[0], "value": round(reference[1], 4)},
        "target": None if target is None else f"{target[0]} {target[1]}",
        "reached": reached, "budget_minutes": minutes, "time": timer.as_dict(),
        "steps": metrics["steps"], "early_stopping": metrics.get("early_stopping"),
        "time_budget": {k: metrics.get("time_budget", {}).get(k) for k in
                        ("steps", "stopped_at_step", "slowdown", "seconds_used")},
        "choices": {entry["name"]: entry["values"] for entry in chosen},
        "hyperparameters": _common.hyperparameters(result.config),
        "load_average_after": os.getloadavg()[0], "config_auto": info.get("auto"),
    }


def earlier_rows(args, rows):
    """The committed results of the tasks this run left out (`--only`), so
    that a run of some tasks does not drop the others' rows; each is marked
    `"earlier_run": true` (its environment is not the one written now)."""
    import json

    path = args.results or os.path.join(_common.RESULTS, f"{NAME}.json")
    ran = {row["task"] for row in rows}
    if args.quick or not os.path.exists(path):
        return []
    with open(path) as handle:
        earlier = json.load(handle).get("tasks", [])
    return [{**row, "earlier_run": True} for row in earlier if row["task"] not in ran]


def main():
    arguments = _common.parser(NAME, __doc__.splitlines()[0])
    arguments.add_argument("--only", nargs="+", choices=TASKS, default=TASKS)
    arguments.add_argument("--minutes", type=float, default=10.0,
                           help="the time budget of each task's whole run")
    args = arguments.parse_args()
    minutes = 1.25 if args.quick else args.minutes
    root = _common.run_directory(args, NAME)
    rows = []
    for task in args.only:
        load = os.getloadavg()[0]
        row = run_task(args, task, root, minutes)
        row["load_average_before"] = load
        rows.append(row)
        print(f"[{NAME}] {task}: {row['metric']} {row['value']} (reference "
              f"{row['reference']['value']}; target {row['target']}: {row['reached']}) "
              f"in {row['time']['wall_seconds']} s", flush=True)
    rows = earlier_rows(args, rows) + rows
    rows.sort(key=lambda row: TASKS.index(row["task"]))
    _common.write_results(args, NAME, {"run_dir": root, "tasks": rows,
                                       "note": "each task's whole keraslm.train within "
                                               "its budget on a shared 2-core machine; "
                                               "load averages before/after each run"})


if __name__ == "__main__":
    main()
