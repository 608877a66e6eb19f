import csv
import json

import pytest

import shared_data


def _slice_lines(source, target, count, skip=0):
    with open(source, encoding="utf-8") as handle:
        lines = handle.readlines()[skip:skip + count]
    target.write_text("".join(lines), encoding="utf-8")
    return str(target)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Small slices of the real corpora, written once per session."""
    root = tmp_path_factory.mktemp("corpus")
    files = {}
    shakespeare = shared_data.path("shakespeare", "train.txt")
    files["lm_train"] = _slice_lines(shakespeare, root / "lm_train.txt", 6000, skip=20000)
    files["lm_valid"] = _slice_lines(shared_data.path("shakespeare", "valid.txt"),
                                     root / "lm_valid.txt", 600)
    for split, count in (("train", 1200), ("test", 300)):
        with open(shared_data.path("reviews", f"{split}.csv"), newline="",
                  encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))[:count]
        path = root / f"reviews_{split}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
        files[f"reviews_{split}"] = str(path)
    for split, count in (("train", 1500), ("test", 300)):
        with open(shared_data.path("brown", f"{split}.conll"), encoding="utf-8") as handle:
            sentences = handle.read().split("\n\n")[:count]
        path = root / f"brown_{split}.conll"
        path.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
        files[f"brown_{split}"] = str(path)
    files["bible_train"] = _slice_lines(shared_data.path("bible_en_es", "train.tsv"),
                                        root / "bible_train.tsv", 1500)
    files["bible_valid"] = _slice_lines(shared_data.path("bible_en_es", "valid.tsv"),
                                        root / "bible_valid.tsv", 200)
    files["qa_train"], files["qa_valid"] = _bible_qa(root)
    return files


def _bible_qa(root):
    """Extractive QA built from Bible verses (no QA set ships in a registry).

    The question quotes two words of the verse and the answer is where they
    stand: a span of the context, found by matching the question's words.
    """
    with open(shared_data.path("bible_en_es", "train.tsv"), encoding="utf-8") as handle:
        verses = [line.split("\t")[0] for line in handle][:1600]
    records = []
    for number, verse in enumerate(verses):
        words = verse.split()
        if len(words) < 8:
            continue
        start = number % (len(words) - 2)
        answer = " ".join(words[start:start + 2])
        offset = verse.find(answer)
        records.append({"question": f"Where is {answer}?", "context": verse,
                        "answer": answer, "answer_start": offset})
    paths = []
    for name, part in (("qa_train.jsonl", records[:-150]), ("qa_valid.jsonl", records[-150:])):
        path = root / name
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
        paths.append(str(path))
    return paths
