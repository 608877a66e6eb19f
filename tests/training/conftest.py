import csv

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
    # Translation needs more pairs to learn to read the source in a few
    # hundred steps (on 1,500 its greedy outputs were the same for most).
    files["bible_train_large"] = _slice_lines(shared_data.path("bible_en_es", "train.tsv"),
                                              root / "bible_train_large.tsv", 6000)
    files["bible_valid"] = _slice_lines(shared_data.path("bible_en_es", "valid.tsv"),
                                        root / "bible_valid.tsv", 200)
    return files
