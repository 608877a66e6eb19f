"""Corpora read as a stream: globs of gzipped shards, the token cache, bounded memory."""

import csv
import gzip
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keraslm
from keraslm import data, text


def _write_shards(source, directory, parts=3):
    """`source` split at line boundaries into gzipped shards; returns the glob."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    size = len(lines) // parts + 1
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(parts):
        with gzip.open(directory / f"part-{i:02d}.txt.gz", "wt", encoding="utf-8") as f:
            f.write("".join(lines[i * size:(i + 1) * size]))
    return str(directory / "part-*.txt.gz")


def _steps(run_dir):
    with open(os.path.join(run_dir, "steps.csv")) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_corpus_reads_globs_directories_and_gzip_as_the_file_reads(data_dir, tmp_path):
    source = data_dir / "shakespeare" / "valid.txt"
    pattern = _write_shards(source, tmp_path / "shards")
    expected = data.read_text(source, split="line", keep_empty=True)
    for spec in (pattern, str(tmp_path / "shards")):
        corpus = data.Corpus(spec, keep_empty=True)
        assert len(corpus.files) == 3
        assert list(corpus) == expected
        assert len(corpus) == len(expected)
    # Blocks end at the end of a file (a shard boundary ends one too).
    whole = tmp_path / "whole.txt.gz"
    with gzip.open(whole, "wb") as f:
        f.write(source.read_bytes())
    blocks = data.Corpus(str(whole), split="block")
    assert list(blocks) == data.read_text(source, split="block")
    assert data.read_text(whole, split="block") == list(blocks)
    # A gzipped table reads through the whole-file readers too.
    table = tmp_path / "train.csv.gz"
    with gzip.open(table, "wt", encoding="utf-8") as f:
        f.write((data_dir / "reviews" / "train.csv").read_text(encoding="utf-8"))
    examples = data.read_table(table)
    assert examples.texts == data.read_table(data_dir / "reviews" / "train.csv").texts
    assert list(data.Corpus(str(table))) == examples.texts


def test_corpus_split_is_deterministic_and_disjoint(data_dir, tmp_path):
    corpus = data.Corpus(_write_shards(data_dir / "shakespeare" / "valid.txt",
                                       tmp_path / "s"), keep_empty=False)
    everything = list(corpus)
    train, valid = corpus.split(0.1, seed=3)
    train_texts = list(train)
    assert len(train_texts) + len(valid) == len(everything)
    assert 0.07 < len(valid) / len(everything) < 0.13
    again_train, again_valid = corpus.split(0.1, seed=3)
    assert again_valid == valid and list(again_train) == train_texts
    assert corpus.split(0.1, seed=4)[1] != valid


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(data.DataError, match="matches no file"):
        data.Corpus(str(tmp_path / "*.txt"))
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(data.DataError, match="holds no supported file"):
        data.Corpus(str(tmp_path / "empty_dir"))
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(data.DataError, match="no supported format.*notes.pdf"):
        data.Corpus(str(tmp_path / "notes.*"))
    bad = tmp_path / "bad.txt.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"fine\nalso fine\nnot \xff fine\n")
    with pytest.raises(data.DataError, match=r"byte ff at byte offset 19 \(line 3"):
        list(data.Corpus(str(bad)))
    truncated = tmp_path / "cut.txt.gz"
    payload = gzip.compress(b"line\n" * 50000)
    truncated.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(data.DataError, match="is damaged"):
        list(data.Corpus(str(truncated)))


def test_glob_of_gzipped_shards_trains_the_same_model_as_the_file(data_dir, tmp_path):
    """Same seed and steps: the stream (tokenizer learned from the Corpus,
    ids cached on disk, windows read from the memory map) gives the losses
    and weights of the in-memory run on the concatenated file."""
    source = data_dir / "shakespeare" / "valid.txt"
    pattern = _write_shards(source, tmp_path / "shards")
    common = dict(task="lm", valid=str(data_dir / "shakespeare" / "test.txt"),
                  tokenizer="wordpiece", vocabulary_size=400, steps=24,
                  checkpoint_every=12, sequence_length=32, batch_size=8,
                  model_options={"num_layers": 1, "hidden_dim": 32,
                                 "intermediate_dim": 64, "num_heads": 2},
                  verbose=False)
    whole = keraslm.training.train(train=str(source), output_dir=str(tmp_path / "file"),
                                   **common)
    shards = keraslm.training.train(train=pattern, output_dir=str(tmp_path / "glob"),
                                    **common)
    assert os.listdir(tmp_path / "glob" / "token_cache")  # the stream path was taken
    assert not os.path.exists(tmp_path / "file" / "token_cache")
    assert (text.load_tokenizer(tmp_path / "file" / "tokenizer").get_vocabulary()
            == text.load_tokenizer(tmp_path / "glob" / "tokenizer").get_vocabulary())
    np.testing.assert_allclose(_steps(tmp_path / "glob"), _steps(tmp_path / "file"),
                               atol=1e-5)
    for a, b in zip(whole.model.get_weights(), shards.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_workers_read_disjoint_shares_that_make_up_the_corpus(data_dir, tmp_path):
    """Enough files: each worker gets whole files (tf.data FILE sharding);
    fewer files than workers: every n-th text (records). Either way the
    shares are disjoint and together are the corpus, held-out texts left out."""
    pattern = _write_shards(data_dir / "shakespeare" / "valid.txt", tmp_path / "shards",
                            parts=4)
    corpus = data.Corpus(pattern, keep_empty=True)
    everything = list(corpus)
    for workers, mode in ((2, "files"), (4, "files"), (3, "files"), (5, "records"),
                          (6, "records")):
        shares = [corpus.shard(workers, index) for index in range(workers)]
        assert {share.shard_mode for share in shares} == {mode}
        texts = [list(share) for share in shares]
        if mode == "files":
            assert sorted(f for share in shares for f in share.files) == corpus.files
            assert [t for index in range(workers) for t in texts[index]] != [] and sorted(
                t for part in texts for t in part) == sorted(everything)
        else:
            # Text k goes to worker k % workers.
            for index in range(workers):
                assert texts[index] == everything[index::workers]
        assert sum(len(share) for share in shares) == len(everything)
    train, valid = corpus.split(0.1, seed=3)
    kept = list(train)
    for workers in (2, 5):  # enough files for file sharding, and not
        shares = [list(train.shard(workers, index)) for index in range(workers)]
        assert {train.shard(workers, i).shard_mode for i in range(workers)} == {"records"}
        assert [text for part in shares for text in part] != []
        assert sorted(t for part in shares for t in part) == sorted(kept)
        for index in range(workers):
            assert shares[index] == kept[index::workers]
    with pytest.raises(ValueError, match=r"split the whole corpus first"):
        train.shard(2, 0).split(0.1)
    with pytest.raises(ValueError, match=r"shard=\(2, 2\)"):
        corpus.shard(2, 2)


@pytest.mark.parametrize("random_offsets", [False, True])
def test_sharded_windows_are_the_workers_shares_of_one_pass(data_dir, tmp_path,
                                                            random_offsets):
    """Worker i of n gets windows i, i+n, ... of the unsharded stream (same
    order, same ids), from the token cache as from memory."""
    pattern = _write_shards(data_dir / "shakespeare" / "valid.txt", tmp_path / "shards")
    corpus = data.Corpus(pattern, keep_empty=True)
    tokenizer = text.CharacterTokenizer.train(corpus)
    cache = data.TokenCache.build(corpus, tokenizer, tmp_path / "cache")
    options = dict(sequence_length=32, batch_size=1, shuffle=True, seed=5,
                   random_offsets=random_offsets)
    take = 90

    def windows(source, **extra):
        lm = data.causal_lm_dataset(source, tokenizer, **options, **extra)
        batches = lm.dataset.take(take)
        return lm, [x["token_ids"].numpy()[0] for x, _ in batches]

    whole, expected = windows(list(corpus))
    for workers in (2, 3):
        for index in range(workers):
            for source in (cache, list(corpus)):
                lm, got = windows(source, shard=(workers, index))
                want = expected[index::workers]
                assert lm.num_examples == -(-(whole.num_examples - index) // workers)
                np.testing.assert_array_equal(np.stack(got[:len(want)]), np.stack(want))
    with pytest.raises(ValueError, match=r"shard=\(2, -1\)"):
        data.causal_lm_dataset(cache, tokenizer, shard=(2, -1))
    with pytest.raises(data.DataError, match=r"Shard 3 of 4 gets no window"):
        data.causal_lm_dataset(["ab"], tokenizer, sequence_length=32, shard=(4, 3))


def test_token_cache_is_reused_and_rebuilt_when_a_file_changes(data_dir, tmp_path):
    pattern = _write_shards(data_dir / "shakespeare" / "valid.txt", tmp_path / "shards")
    corpus = data.Corpus(pattern, keep_empty=True)
    tokenizer = text.CharacterTokenizer.train(corpus)
    lines = []
    first = data.TokenCache.build(corpus, tokenizer, tmp_path / "cache", progress=lines.append)
    assert first.rebuilt and first.num_texts == len(list(corpus))
    expected = tokenizer.encode(list(corpus))
    flat = [i for ids in expected for i in ids + [tokenizer.eos_id]]
    np.testing.assert_array_equal(first.ids, flat)
    assert first.ids.dtype == np.uint16  # a small vocabulary: two bytes an id
    second = data.TokenCache.build(corpus, tokenizer, tmp_path / "cache", progress=lines.append)
    assert not second.rebuilt and "reusing" in lines[-1]
    # Another tokenizer gets its own cache beside the first.
    other = text.ByteTokenizer()
    assert data.TokenCache.build(corpus, other, tmp_path / "cache").rebuilt
    # A changed shard (new size and mtime) rebuilds it.
    shard = tmp_path / "shards" / "part-01.txt.gz"
    with gzip.open(shard, "at", encoding="utf-8") as f:
        f.write("Exeunt omnes.\n")
    third = data.TokenCache.build(data.Corpus(pattern, keep_empty=True), tokenizer,
                                  tmp_path / "cache", progress=lines.append)
    assert third.rebuilt and "out of date" in " ".join(lines)
    assert third.num_texts == first.num_texts + 1
    # A damaged ids file (a build killed half-way) is rebuilt, not trusted.
    ids_path = os.path.join(third.directory, "ids.bin")
    with open(ids_path, "r+b") as f:
        f.truncate(10)
    assert data.TokenCache.build(data.Corpus(pattern, keep_empty=True), tokenizer,
                                 tmp_path / "cache").rebuilt


def test_cache_reads_windows_that_wrap_past_the_end(tmp_path):
    """`read_windows` (os.pread, not the memory map) gives ids[(s + j) % n],
    windows that wrap past the last id and windows longer than the corpus
    included, and a whole pass of moving windows from the cache equals the
    in-memory pass."""
    lines = [f"line {i} " + "abcdefghij"[: i % 10] for i in range(300)]
    tokenizer = text.CharacterTokenizer.train(lines)
    cache = data.TokenCache.build(lines, tokenizer, tmp_path / "cache")
    ids = np.asarray(cache.ids)
    total = len(ids)
    rng = np.random.default_rng(0)
    starts = np.concatenate([rng.integers(0, total, 50), [0, total - 1, total - 5]])
    for length in (1, 33, total, total + 7):
        expected = ids[(starts[:, None] + np.arange(length)) % total]
        np.testing.assert_array_equal(cache.read_windows(starts, length), expected)
    options = dict(sequence_length=16, batch_size=7, shuffle=True, seed=2,
                   random_offsets=True)
    passes = 2 * -(-total // (16 * 7))
    from_cache = data.causal_lm_dataset(cache, tokenizer, **options).dataset
    in_memory = data.causal_lm_dataset(lines, tokenizer, **options).dataset
    for (a, la), (b, lb) in zip(from_cache.take(passes), in_memory.take(passes)):
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])
        np.testing.assert_array_equal(la, lb)


def test_a_repeated_run_with_a_shared_cache_starts_from_it(data_dir, tmp_path, capsys):
    pattern = _write_shards(data_dir / "shakespeare" / "valid.txt", tmp_path / "shards")
    arguments = ["train", "--task", "lm", "--train", pattern, "--tokenizer", "wordpiece",
                 "--vocabulary-size", "500",
                 "--steps", "2", "--checkpoint-every", "2", "--sequence-length", "32",
                 "--batch-size", "4", "--token-cache", str(tmp_path / "cache")]
    assert keraslm.cli.main(arguments + ["-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "[cache] wrote" in out and "[cache] kept the tokenizer" in out
    assert "learned 500 WordPiece tokens" in out
    assert keraslm.cli.main(arguments + ["-o", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    # Neither the tokenizer nor the ids are made again.
    assert "[cache] reusing the tokenizer" in out and "learned" not in out
    assert "[cache] reusing" in out and "[cache] wrote" not in out
    config = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert config["token_cache"] == str(tmp_path / "cache")
    first, second = (text.load_tokenizer(tmp_path / run / "tokenizer") for run in "ab")
    assert first.get_vocabulary() == second.get_vocabulary()
    # Other settings are another tokenizer; a changed file trains again.
    corpus = data.Corpus(pattern, keep_empty=True)
    trained = []

    def learn(size):
        trained.append(size)
        return text.WordPieceTokenizer.train(corpus, vocabulary_size=size)

    settings = {"type": "wordpiece", "vocabulary_size": 300}
    first = data.cached_tokenizer(corpus, tmp_path / "own", settings, lambda: learn(300))
    again = data.cached_tokenizer(corpus, tmp_path / "own", settings, lambda: learn(300))
    assert trained == [300] and again.get_vocabulary() == first.get_vocabulary()
    data.cached_tokenizer(corpus, tmp_path / "own", {**settings, "vocabulary_size": 301},
                          lambda: learn(301))
    assert trained == [300, 301]
    path = corpus.files[0]
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    data.cached_tokenizer(data.Corpus(pattern, keep_empty=True), tmp_path / "own",
                          settings, lambda: learn(300))
    assert trained == [300, 301, 300]


PEAK_RSS_SCRIPT = textwrap.dedent("""
    import itertools, resource, sys
    from keraslm import data, text
    corpus = data.Corpus(sys.argv[1], keep_empty=True)
    tokenizer = text.ByteTokenizer()
    tokenizer.encode(["warm up"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    vocab = text.CharacterTokenizer.train(corpus)      # one streaming pass
    cache = data.TokenCache.build(corpus, vocab, sys.argv[2])
    lm = data.causal_lm_dataset(cache, vocab, sequence_length=128, batch_size=32,
                                random_offsets=True)
    for _ in itertools.islice(lm.dataset, 200):
        pass
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before, after, cache.num_characters, len(cache.ids))
""")


def test_a_200_mb_corpus_streams_in_bounded_memory(data_dir, tmp_path):
    """Character vocabulary, token cache and 200 training batches over a
    generated 200 MB corpus (Shakespeare's plays repeated, in 8 files): the
    peak resident memory grows by less than 150 MB, under the 200 MB of text
    and far under the 800 MB its ids would take as int32 in memory (the
    in-memory path holds the texts, their ragged ids and the windows)."""
    play = (data_dir / "shakespeare" / "train.txt").read_bytes()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    repeats = -(-25_000_000 // len(play))
    for i in range(8):
        with open(corpus / f"part-{i}.txt", "wb") as f:
            for _ in range(repeats):
                f.write(play)
    total = sum(os.path.getsize(p) for p in corpus.iterdir())
    assert total >= 200_000_000
    result = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(corpus),
                             str(tmp_path / "cache")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    before, after, characters, tokens = map(int, result.stdout.split()[-4:])
    grown_mb = (after - before) / 1024  # ru_maxrss is in KiB on Linux
    print(f"\npeak RSS {before / 1024:.0f} MB -> {after / 1024:.0f} MB "
          f"(+{grown_mb:.0f} MB) over {total / 1e6:.0f} MB, {tokens:,} tokens")
    assert characters > 190_000_000 and tokens > characters
    assert grown_mb < 150
