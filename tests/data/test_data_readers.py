import warnings

import pytest

from keraslm import data, text


def test_read_text_by_line_and_by_block(data_dir):
    path = data_dir / "shakespeare" / "test.txt"
    lines, numbers = data.read_text(path, with_lines=True)
    raw = path.read_text(encoding="utf-8").split("\n")
    assert len(lines) == sum(1 for line in raw if line.strip())
    assert lines[0] == "HAMLET, PRINCE OF DENMARK" and numbers[0] == 1
    assert raw[numbers[100] - 1] == lines[100]
    blocks = data.read_text(path, split="block")
    assert 100 < len(blocks) < len(lines)
    assert sum(len(b.split("\n")) for b in blocks) == len(lines)


def test_read_reviews_csv(data_dir):
    train = data.read_table(data_dir / "reviews" / "train.csv")
    test = data.read_table(data_dir / "reviews" / "test.csv")
    assert (len(train), len(test)) == (4000, 1000)
    assert set(train.labels) == set(test.labels) == {"great", "other"}
    assert 0.6 < train.labels.count("great") / len(train) < 0.7
    assert train.texts[0].startswith("this stuff is")
    assert "<br />" in train.texts[1]
    # Multi-line quoted rows keep their starting line number.
    assert train.lines[0] == 2 and train.lines == sorted(train.lines)


def test_read_table_tsv_and_jsonl(tmp_path):
    (tmp_path / "a.tsv").write_text("label\ttext\npos\tgood tea\nneg\tbad\n")
    table = data.read_table(tmp_path / "a.tsv")
    assert table.texts == ["good tea", "bad"] and table.labels == ["pos", "neg"]
    (tmp_path / "a.jsonl").write_text('{"body": "x", "y": 1}\n\n{"body": "z", "y": 0}\n')
    table = data.read_table(tmp_path / "a.jsonl", text_column="body", label_column="y")
    assert table.texts == ["x", "z"] and table.labels == ["1", "0"] and table.lines == [1, 3]


def test_read_brown_conll(data_dir):
    brown = data.read_conll(data_dir / "brown" / "train.conll")
    assert len(brown) == 51698
    assert brown.tokens[0][:3] == ["The", "Fulton", "County"]
    assert brown.tags[0][:3] == ["at", "np-tl", "nn-tl"]
    assert all(len(t) == len(g) for t, g in zip(brown.tokens, brown.tags))
    assert sum(len(t) for t in brown.tokens) > 1_000_000


def test_read_bible_pairs(data_dir):
    sizes = {split: len(data.read_pairs(data_dir / "bible_en_es" / f"{split}.tsv"))
             for split in ("train", "valid", "test")}
    assert sum(sizes.values()) == 31150
    pairs = data.read_pairs(data_dir / "bible_en_es" / "valid.tsv")
    assert all(pairs.sources) and all(pairs.targets)
    assert any("Dios" in t for t in pairs.targets[:50])


# ----------------------------------------------------------------- bad input
def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(data.DataError, match=r"File '.*empty.txt' is empty \(0 bytes\)"):
        data.read_text(path)
    path.write_text("\n  \n")
    with pytest.raises(data.DataError, match="contains only whitespace"):
        data.read_conll(path)
    with pytest.raises(data.DataError, match="does not exist"):
        data.read_text(tmp_path / "missing.txt")


def test_non_utf8_file_names_the_byte_offset_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(data.DataError) as error:
        data.read_text(path)
    message = str(error.value)
    assert "latin1.txt' is not valid UTF-8" in message
    assert "byte e9 at byte offset 14 (line 2, column 4)" in message
    assert "errors='replace'" in message and "encoding=" in message
    assert (error.value.line, error.value.byte_offset) == (2, 14)
    assert data.read_text(path, errors="replace")[1] == "caf\ufffd au lait"
    assert data.read_text(path, encoding="latin-1")[1] == "café au lait"


def test_missing_label_column_lists_columns_and_suggests(data_dir):
    with pytest.raises(data.DataError) as error:
        data.read_table(data_dir / "reviews" / "test.csv", label_column="labels")
    message = str(error.value)
    assert "test.csv', line 1: no label column 'labels'" in message
    assert "Columns found: text, label" in message
    assert "Did you mean 'label'?" in message


def test_missing_key_and_bad_rows(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(data.DataError, match=r"r.jsonl', line 2: no label column 'label'"):
        data.read_table(path)
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", \n')
    with pytest.raises(data.DataError, match=r"line 2: not valid JSON"):
        data.read_table(path)
    path = tmp_path / "r.csv"
    path.write_text("text,label\n\"a, b\",x\nc,d,e\n")
    with pytest.raises(data.DataError, match=r"r.csv', line 3: row has 3 field\(s\), expected 2"):
        data.read_table(path)


def test_conll_line_without_tab_names_file_and_line(tmp_path):
    path = tmp_path / "tags.conll"
    path.write_text("The\tat\njury\tnn\n\nsaid vbd\n")
    with pytest.raises(data.DataError) as error:
        data.read_conll(path)
    assert ("tags.conll', line 4: expected 'token<TAB>tag' (columns separated by "
            "a tab), received 'said vbd', which has no tab.") in str(error.value)
    assert error.value.line == 4


def test_pairs_line_without_tab(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("hello\thola\ngoodbye\n")
    with pytest.raises(data.DataError, match=r"pairs.tsv', line 2: expected 2 tab-separated columns"):
        data.read_pairs(path)


def test_unseen_label_at_evaluation_time(data_dir, tmp_path):
    train = data.read_table(data_dir / "reviews" / "train.csv")
    vocabulary = text.LabelVocabulary.fit(train.labels)
    path = tmp_path / "eval.csv"
    path.write_text("text,label\ngood,great\nmeh,neutral\n")
    evaluation = data.read_table(path)
    tokenizer = text.ByteTokenizer()
    with pytest.raises(text.UnknownLabelError) as error:
        data.classification_dataset(evaluation.texts, evaluation.labels, tokenizer,
                                    label_vocabulary=vocabulary, source=str(path),
                                    positions=evaluation.lines)
    message = str(error.value)
    assert "Label 'neutral' (line 3 in" in message and "eval.csv" in message
    assert "never seen in training. Known labels (2): great, other." in message


def test_too_long_sequences_are_truncated_and_counted(data_dir):
    test = data.read_table(data_dir / "reviews" / "test.csv")
    tokenizer = text.ByteTokenizer()
    with pytest.warns(data.TruncationWarning) as record:
        task = data.classification_dataset(test.texts, test.labels, tokenizer,
                                           sequence_length=64, batch_size=50)
    expected = sum(len(t.encode("utf-8")) + 2 > 64 for t in test.texts)
    assert task.num_truncated == expected
    assert f"{expected} of 1000 texts are longer than 64 tokens" in str(record[0].message)
    # Truncated, not dropped: every example is still there.
    assert sum(int(y.shape[0]) for _, y in task.dataset) == 1000


def test_cleaning_on_reviews(data_dir):
    reviews = data.read_table(data_dir / "reviews" / "train.csv")
    with_html = [t for t in reviews.texts if "<br" in t or "&quot;" in t][:50]
    cleaner = text.TextCleaner(strip_html=True, normalization="NFKC", lowercase=True)
    cleaned = cleaner(with_html)
    assert all("<br" not in t and "&quot;" not in t for t in cleaned)
    assert all(t == t.lower() for t in cleaned)
    assert text.strip_html("Great<br />tea &amp; <i>cheap</i>") == "Great tea & cheap"
    assert text.TextCleaner(normalization="NFKC")("ﬁne　ｔｅａ") == "fine tea"
    assert text.TextCleaner(stop_words="english")("This is not a good tea") == "good tea"
    with pytest.raises(ValueError, match="Received: normalization='NFX'"):
        text.TextCleaner(normalization="NFX")


def test_augmentation_is_seeded_and_keeps_labels(data_dir):
    reviews = data.read_table(data_dir / "reviews" / "test.csv")
    texts, labels = text.augment(reviews.texts[:100], reviews.labels[:100], copies=2,
                                 seed=3)
    again, _ = text.augment(reviews.texts[:100], reviews.labels[:100], copies=2, seed=3)
    assert texts == again and len(texts) == 300
    assert labels == reviews.labels[:100] * 3
    for original, variant in zip(texts[:100], texts[100:200]):
        assert sorted(variant.split()) != [] and set(variant.split()) <= set(original.split())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert text.random_swap("one", 3) == "one"
