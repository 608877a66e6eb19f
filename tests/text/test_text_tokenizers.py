import json
import re

import numpy as np
import pytest
import tensorflow as tf

import keraslm
from keraslm import data, text
from keraslm.text import special_tokens as st


def _round_trip_report(tokenizer, lines):
    """Checks decode(encode(x)) == normalize(x) on every line without [UNK]."""
    ids = tokenizer.encode(lines)
    decoded = tokenizer.decode(ids)
    expected = tokenizer.normalize(lines)
    with_unknown = 0
    for line_ids, got, want in zip(ids, decoded, expected):
        if tokenizer.unk_id in line_ids:
            with_unknown += 1
            continue
        assert got == want
    return with_unknown


def test_wordpiece_round_trip_and_unknown_rate(wordpiece, shakespeare_test, record_property):
    skipped = _round_trip_report(wordpiece, shakespeare_test)
    rate = wordpiece.unknown_rate(shakespeare_test)
    record_property("wordpiece_unknown_rate", rate)
    print(f"\nWordPiece ({wordpiece.vocabulary_size} tokens) unknown rate on "
          f"shakespeare/test.txt: {rate:.5%}; lines with [UNK]: {skipped}")
    assert wordpiece.vocabulary_size == 2000
    assert rate < 0.005
    assert skipped < 0.01 * len(shakespeare_test)


def test_wordpiece_matches_keras_hub_on_shakespeare_test(wordpiece, shakespeare_test):
    import keras_hub

    peer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=wordpiece.get_vocabulary(), lowercase=False, strip_accents=False)
    ours = wordpiece(shakespeare_test)
    theirs = _as_lists(peer(tf.constant(shakespeare_test)))
    assert ours.to_list() == theirs
    # And the way back to text agrees too.
    sample = ours[:200]
    assert wordpiece.detokenize(sample).numpy().tolist() == \
        [x if isinstance(x, bytes) else x.encode() for x in
         _as_lists(peer.detokenize(sample))]


def _as_lists(value):
    if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        value = value.to_list() if isinstance(value, tf.RaggedTensor) else value.numpy().tolist()
    return [v.tolist() if hasattr(v, "tolist") else v for v in value]


def test_wordpiece_options_match_keras_hub():
    import keras_hub

    lines = ["Héllo, WORLD! Ça va?", "你好世界 mixed 中文", "tab\there  spaces"]
    vocabulary = list(st.SPECIAL_TOKENS) + sorted(
        set("".join(lines).lower()) | {"hello", "world", "ca", "va", "##s"} - {" ", "\t"})
    for options in ({}, {"lowercase": True, "strip_accents": True}):
        ours = text.WordPieceTokenizer(vocabulary, **options)
        peer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, **options)
        assert ours(lines).to_list() == _as_lists(peer(tf.constant(lines)))


def test_sentencepiece_round_trip_and_unknown_rate(sentencepiece, shakespeare_test,
                                                   record_property):
    assert sentencepiece.vocabulary_size == 2000
    skipped = _round_trip_report(sentencepiece, shakespeare_test)
    rate = sentencepiece.unknown_rate(shakespeare_test)
    record_property(f"sentencepiece_{sentencepiece.model_type}_unknown_rate", rate)
    print(f"\nSentencePiece {sentencepiece.model_type} unknown rate on "
          f"shakespeare/test.txt: {rate:.5%}; lines with [UNK]: {skipped}")
    assert rate < 0.005
    assert skipped < 0.01 * len(shakespeare_test)


def test_sentencepiece_normalizes_nfkc_and_whitespace(sentencepiece):
    assert sentencepiece.normalize("  To   be ﬁne ") == "To be fine"
    assert sentencepiece.decode(sentencepiece.encode("  To   be ﬁne ")) == "To be fine"


def test_character_tokenizer_round_trips_tang_poems_exactly(data_dir, record_property):
    train = data.read_text(data_dir / "tang_poems" / "train.txt")
    test = data.read_text(data_dir / "tang_poems" / "test.txt")
    tokenizer = text.CharacterTokenizer.train(train)
    # Every character seen in training comes back exactly, punctuation included.
    sample = train[:3000]
    assert tokenizer.decode(tokenizer.encode(sample)) == sample
    rate = tokenizer.unknown_rate(test)
    record_property("character_unknown_rate_tang_test", rate)
    print(f"\nCharacter vocabulary {tokenizer.vocabulary_size}; unknown rate on "
          f"tang_poems/test.txt: {rate:.5%}")
    assert rate < 0.001
    known = [line for line, ids in zip(test, tokenizer.encode(test))
             if tokenizer.unk_id not in ids]
    assert len(known) > 0.95 * len(test)
    assert tokenizer.decode(tokenizer.encode(known)) == known
    # One id per character.
    assert len(tokenizer.encode(test[0])) == len(test[0])


def test_byte_tokenizer_round_trips_any_text(data_dir):
    tokenizer = text.ByteTokenizer()
    lines = data.read_text(data_dir / "tang_poems" / "test.txt")[:200]
    lines += data.read_text(data_dir / "bible_en_es" / "valid.tsv")[:200]
    assert tokenizer.decode(tokenizer.encode(lines)) == lines
    assert tokenizer.encode("hé") == [104 + 5, 0xC3 + 5, 0xA9 + 5]
    assert tokenizer.vocabulary_size == 261


def test_word_tokenizer_round_trip(shakespeare_train, shakespeare_test, record_property):
    tokenizer = text.WordTokenizer.train(shakespeare_train[:20000], vocabulary_size=5000)
    assert tokenizer.vocabulary_size == 5000
    _round_trip_report(tokenizer, shakespeare_test[:2000])
    rate = tokenizer.unknown_rate(shakespeare_test)
    record_property("word_unknown_rate", rate)
    print(f"\nWord-level (5000) unknown rate on shakespeare/test.txt: {rate:.3%}")
    assert 0.0 < rate < 0.15


def _all_tokenizers(shakespeare_train):
    lines = shakespeare_train[:3000]
    return [
        text.WordPieceTokenizer.train(lines, vocabulary_size=500),
        text.SentencePieceTokenizer.train(lines, vocabulary_size=500, model_type="bpe"),
        text.ByteTokenizer(),
        text.CharacterTokenizer.train(lines),
        text.WordTokenizer.train(lines, vocabulary_size=500, lowercase=True),
    ]


def test_special_tokens_are_uniform_and_saving_round_trips(shakespeare_train,
                                                           shakespeare_test, tmp_path):
    sample = shakespeare_test[:300]
    for tokenizer in _all_tokenizers(shakespeare_train):
        assert [tokenizer.id_to_token(i) for i in range(5)] == list(st.SPECIAL_TOKENS)
        assert tokenizer.special_token_ids == {"pad": 0, "unk": 1, "cls": 2,
                                               "sep": 3, "mask": 4}
        assert tokenizer.token_to_id("[MASK]") == 4
        directory = tmp_path / tokenizer.type_name
        tokenizer.save(directory)
        config = json.loads((directory / "tokenizer.json").read_text())
        assert config["type"] == tokenizer.type_name
        assert config["special_tokens"]["mask"] == {"id": 4, "token": "[MASK]"}
        loaded = text.load_tokenizer(directory)
        assert type(loaded) is type(tokenizer)
        assert loaded.get_vocabulary() == tokenizer.get_vocabulary()
        assert loaded.encode(sample) == tokenizer.encode(sample)
        assert loaded.get_config() == tokenizer.get_config()


def test_tokenize_shapes_and_graph_use(wordpiece):
    single = wordpiece.tokenize("To be")
    assert isinstance(single, tf.Tensor) and single.shape.rank == 1
    batch = wordpiece.tokenize(["To be", "or not"])
    assert isinstance(batch, tf.RaggedTensor) and batch.shape[0] == 2
    mapped = tf.data.Dataset.from_tensor_slices(["To be", "or not"]).map(wordpiece)
    assert [x.numpy().tolist() for x in mapped] == batch.to_list()
    ids = wordpiece.encode(["To be"])[0]
    assert wordpiece.decode([st.CLS_ID] + ids + [st.SEP_ID, 0, 0]) == "To be"
    assert wordpiece.decode([st.CLS_ID] + ids, skip_special_tokens=False).startswith("[CLS]")


def test_registry_trains_and_loads_every_type(shakespeare_train):
    assert set(keraslm.registry.tokenizers.names()) >= {
        "wordpiece", "sentencepiece", "byte", "character", "word"}
    tokenizer = text.train_tokenizer("word", shakespeare_train[:500], vocabulary_size=50)
    assert isinstance(tokenizer, text.WordTokenizer)
    with pytest.raises(keraslm.registry.UnknownComponentError,
                       match="Unknown tokenizer 'wordpeice'.*Did you mean 'wordpiece'"):
        text.train_tokenizer("wordpeice", ["a"])


def test_bad_vocabularies_and_inputs_are_clear_errors(tmp_path):
    with pytest.raises(text.TokenizerError, match=r"must start with the special tokens.*"
                       r"Received first tokens: \['a', 'b'\]"):
        text.WordPieceTokenizer(["a", "b"])
    with pytest.raises(text.TokenizerError, match=r"'x' appears twice, at ids 5 and 6"):
        text.WordTokenizer(list(st.SPECIAL_TOKENS) + ["x", "x"])
    with pytest.raises(text.TokenizerError, match="No tokenizer in .*tokenizer.json"):
        text.load_tokenizer(tmp_path)
    with pytest.raises(text.TokenizerError, match="not one string"):
        text.CharacterTokenizer.train("abc")
    with pytest.raises(text.TokenizerError, match=r"expects strings. Received int 3 at index 1"):
        text.ByteTokenizer().tokenize(["a", 3])
    with pytest.raises(text.TokenizerError, match="model_type='wordpiece'"):
        text.SentencePieceTokenizer.train(["a b"], vocabulary_size=10,
                                          model_type="wordpiece")


def test_cli_tokenizer_train(shakespeare_train, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(shakespeare_train[:1500]) + "\n", encoding="utf-8")
    output = tmp_path / "tok"
    status = keraslm.cli.main(["tokenizer", "train", "--type", "wordpiece",
                               "--vocab-size", "300", str(corpus), "-o", str(output)])
    assert status == 0
    assert "Trained a wordpiece tokenizer" in capsys.readouterr().out
    tokenizer = text.load_tokenizer(output)
    assert isinstance(tokenizer, text.WordPieceTokenizer)
    assert tokenizer.vocabulary_size == 300
    # A bad file is reported by the CLI, not a traceback.
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    status = keraslm.cli.main(["tokenizer", "train", "--type", "byte", str(bad),
                               "-o", str(tmp_path / "b")])
    assert status == 1
    assert "byte offset 3" in capsys.readouterr().err


@pytest.mark.slow
def test_wordpiece_8000_on_all_of_shakespeare(shakespeare_train, shakespeare_test):
    tokenizer = text.WordPieceTokenizer.train(shakespeare_train, vocabulary_size=8000)
    rate = tokenizer.unknown_rate(shakespeare_test)
    print(f"\nWordPiece ({tokenizer.vocabulary_size}) on all of train: unknown rate "
          f"{rate:.5%}")
    assert rate < 0.001
    assert tokenizer.vocabulary_size == 8000


@pytest.mark.parametrize("type_name", ["wordpiece", "sentencepiece", "word", "character"])
def test_trainers_stream_an_open_file_and_report_progress(type_name, data_dir, tmp_path):
    """Training reads an iterable once (here an open file, never a list) and
    learns what the same lines as a list give; progress lines are reported."""
    path = data_dir / "shakespeare" / "valid.txt"
    lines = data.read_text(path, split="line", keep_empty=True)
    size = {"character": None}.get(type_name, 600)
    reports = []
    with open(path, encoding="utf-8") as f:
        streamed = text.train_tokenizer(type_name, (line.rstrip("\n") for line in f),
                                        vocabulary_size=size, progress=reports.append)
    listed = text.train_tokenizer(type_name, lines, vocabulary_size=size)
    assert streamed.get_vocabulary() == listed.get_vocabulary()
    if size:
        assert streamed.vocabulary_size == size
    assert reports and f"from {len(lines):,} texts" in reports[-1]
    if type_name != "word":  # 600 words leave the rarer ones out
        # Every character of the corpus is covered (no [UNK] on its own text).
        assert streamed.unknown_rate(lines) == 0.0


def test_wordpiece_keeps_every_character_at_the_exact_size():
    """Rare characters stay in a vocabulary too small for them to be learned
    and the size is still the one asked for (the latest merges make room)."""
    lines = ["the cat sat on the mat", "a dog ran in the park",
             "she sells sea shells by the sea shore"] * 20 + ["zebra ξ 猫", "qu'il"]
    tokenizer = text.WordPieceTokenizer.train(lines, vocabulary_size=60)
    assert tokenizer.vocabulary_size == 60
    vocabulary = set(tokenizer.get_vocabulary())
    for char in set("".join(lines)) - {" "}:
        assert char in vocabulary
    # Continuations for the characters seen inside a word (qu'il is the
    # words qu ' il), none for those that never are.
    words = re.findall(r"\w+|[^\w\s]", " ".join(lines))
    inside = {char for word in words for char in word[1:]}
    assert {token[2:] for token in vocabulary
            if token.startswith("##") and len(token) == 3} == inside
    assert not {"##ξ", "##猫", "##'", "##i"} & vocabulary
    assert tokenizer.unknown_rate(lines) == 0.0


def test_wordpiece_spends_no_room_on_continuations_chinese_never_needs(data_dir):
    """Chinese characters are words of their own (split_on_cjk): a Tang
    poem vocabulary holds each character once, not also as `##`, and still
    encodes the test poems without [UNK] for characters it saw."""
    with open(data_dir / "tang_poems" / "train.txt", encoding="utf-8") as f:
        poems = [line for _, line in zip(range(4000), f)]
    tokenizer = text.WordPieceTokenizer.train(poems, vocabulary_size=6000)
    vocabulary = tokenizer.get_vocabulary()
    characters = set("".join(poems)) - {" ", "\n"}
    assert characters <= set(vocabulary)
    assert not [token for token in vocabulary
                if token.startswith("##") and "\u4e00" <= token[2:3] <= "\u9fff"]
    assert tokenizer.unknown_rate(poems) == 0.0


def test_trainers_refuse_non_strings_with_their_index():
    def texts():
        yield "fine"
        yield 3
    for type_name in ("wordpiece", "sentencepiece", "word", "character"):
        with pytest.raises(text.TokenizerError, match="Received int 3 at index 1"):
            text.train_tokenizer(type_name, texts(), vocabulary_size=50)
        with pytest.raises(text.TokenizerError, match="is empty"):
            text.train_tokenizer(type_name, iter([]), vocabulary_size=50)
