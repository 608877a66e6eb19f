import numpy as np
import pytest

from keraslm import data, text
from keraslm.text import special_tokens as st


def _collect(dataset):
    batches = list(dataset)
    return batches


def test_causal_lm_windows_are_packed_and_shifted(wordpiece, shakespeare_test):
    lines = shakespeare_test[:2000]
    task = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=16,
                                  shuffle=False)
    stream = []
    for line_ids in wordpiece.encode(lines):
        stream += line_ids + [st.EOS_ID]
    assert task.num_tokens == len(stream)
    inputs, targets = [], []
    for batch in task.dataset:
        x, y = batch  # (inputs, labels): no padding masks, no sample weights
        assert set(x) == {"token_ids"}
        assert x["token_ids"].shape[1] == 32 and y.shape == x["token_ids"].shape
        tokens, labels = x["token_ids"].numpy(), y.numpy()
        # A position is scored exactly when its next id is a real (non-pad) one.
        scored, real = labels != -100, tokens != st.PAD_ID
        np.testing.assert_array_equal(scored[:, :-1], real[:, 1:])
        assert real[scored].all()
        np.testing.assert_array_equal(tokens[:, 1:][labels[:, :-1] != -100],
                                      labels[:, :-1][labels[:, :-1] != -100])
        inputs.append(tokens)
        targets.append(labels)
    inputs, targets = np.concatenate(inputs), np.concatenate(targets)
    # Contiguous windows: the inputs are the stream, every next id is a label once.
    assert inputs.reshape(-1)[: len(stream) - 1].tolist() == stream[:-1]
    assert targets[targets != -100].tolist() == stream[1:]


def _stream(tokenizer, lines):
    stream = []
    for line_ids in tokenizer.encode(lines):
        stream += line_ids + [st.EOS_ID]
    return np.array(stream)


@pytest.mark.parametrize("stride", [32, 24, 8, 1])
def test_causal_lm_stride_scores_every_id_once_with_context(wordpiece, shakespeare_test,
                                                            stride):
    lines = shakespeare_test[:600]
    stream = _stream(wordpiece, lines)
    task = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=64,
                                  shuffle=False, stride=stride)
    scored, positions = [], []
    for x, y in task.dataset:
        tokens, labels = x["token_ids"].numpy(), y.numpy()
        assert (tokens[labels != -100] != st.PAD_ID).all()
        for row_labels in labels:
            keep = row_labels != -100
            scored.append(row_labels[keep])
            positions.append(np.nonzero(keep)[0])
    # Every next id is scored exactly once, in stream order...
    np.testing.assert_array_equal(np.concatenate(scored), stream[1:])
    # ...and after the first window, with at least 32 - stride ids before it.
    assert all((p >= 32 - stride).all() for p in positions[1:])
    assert task.num_examples == 1 + -(-(len(stream) - 1 - 32) // stride)


def test_causal_lm_stride_windows_hold_the_preceding_ids(wordpiece, shakespeare_test):
    lines = shakespeare_test[:300]
    stream = _stream(wordpiece, lines)
    task = data.causal_lm_dataset(lines, wordpiece, sequence_length=16, batch_size=8,
                                  shuffle=False, stride=4)
    rows = np.concatenate([x["token_ids"].numpy() for x, _ in task.dataset])
    for index, row in enumerate(rows[:-4]):
        np.testing.assert_array_equal(row, stream[4 * index: 4 * index + 16])


def test_causal_lm_random_offsets_move_windows_and_cover_each_pass(wordpiece,
                                                                   shakespeare_test):
    lines = shakespeare_test[:600]
    stream = _stream(wordpiece, lines)
    fixed = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=1,
                                   shuffle=False)
    moving = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=1,
                                    random_offsets=True, seed=5)
    assert moving.num_examples == fixed.num_examples
    fixed_windows = {tuple(x["token_ids"].numpy()[0]) for x, _ in fixed.dataset}
    batches = list(moving.dataset.take(3 * moving.num_examples))
    passes = []
    for epoch in range(3):
        chunk = batches[epoch * moving.num_examples: (epoch + 1) * moving.num_examples]
        labels = np.concatenate([y.numpy()[0] for _, y in chunk])
        labels = labels[labels != -100]
        # Each pass predicts every id once but one: the multiset of labels is
        # that of the stream, with the offset's id swapped for the first id.
        assert len(labels) == len(stream) - 1
        counts = np.bincount(labels, minlength=wordpiece.vocabulary_size)
        expected = np.bincount(stream[1:], minlength=wordpiece.vocabulary_size)
        assert np.abs(counts - expected).sum() <= 2
        passes.append(frozenset(tuple(x["token_ids"].numpy()[0]) for x, _ in chunk))
    # The boundaries move from pass to pass (offsets are drawn independently,
    # so two of three passes may share one), away from the fixed split's.
    assert len(set(passes)) >= 2
    assert min(len(windows & fixed_windows) for windows in passes) <= 1
    # Reproducible from the seed, different for another seed.
    again = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=1,
                                   random_offsets=True, seed=5)
    other = data.causal_lm_dataset(lines, wordpiece, sequence_length=32, batch_size=1,
                                   random_offsets=True, seed=6)
    take = 2 * moving.num_examples
    same = [x["token_ids"].numpy() for x, _ in again.dataset.take(take)]
    np.testing.assert_array_equal(np.concatenate(same),
                                  np.concatenate([x["token_ids"].numpy()
                                                  for x, _ in batches[:take]]))
    different = [x["token_ids"].numpy() for x, _ in other.dataset.take(take)]
    assert not np.array_equal(np.concatenate(different), np.concatenate(same))


@pytest.mark.parametrize("options, message", [
    (dict(stride=0), "stride"), (dict(stride=33), "stride"), (dict(stride=2.5), "stride"),
    (dict(stride=True), "stride"), (dict(stride=8, random_offsets=True), "random_offsets"),
])
def test_causal_lm_rejects_bad_stride(wordpiece, shakespeare_test, options, message):
    with pytest.raises(ValueError, match=message):
        data.causal_lm_dataset(shakespeare_test[:50], wordpiece, sequence_length=32,
                               **options)


def test_masked_lm_rates_and_padding(wordpiece, shakespeare_test):
    task = data.masked_lm_dataset(shakespeare_test, wordpiece, sequence_length=64,
                                  batch_size=64, seed=1)
    selected = maskable = to_mask = to_random = kept = 0
    for x, y in task.dataset:
        assert set(x) == {"token_ids"}
        tokens, labels = x["token_ids"].numpy(), y.numpy()
        padding = tokens == st.PAD_ID
        # Padding is never masked: it stays a padded tail, and is never scored.
        assert (np.diff(padding.astype(int), axis=1) >= 0).all()
        assert (labels[padding] == -100).all()
        chosen = labels != -100
        assert not np.isin(labels[chosen], [st.PAD_ID, st.CLS_ID, st.SEP_ID]).any()
        selected += chosen.sum()
        # Positions that could be masked: real tokens other than [CLS]/[SEP].
        original = np.where(chosen, labels, tokens)
        maskable += (~padding & ~np.isin(original, [st.CLS_ID, st.SEP_ID])).sum()
        to_mask += (tokens[chosen] == st.MASK_ID).sum()
        kept += (tokens[chosen] == labels[chosen]).sum()
        replaced = chosen & (tokens != st.MASK_ID) & (tokens != labels)
        to_random += replaced.sum()
        assert (tokens[replaced] >= st.NUM_SPECIAL_TOKENS).all()
    assert maskable > 50_000
    assert abs(selected / maskable - 0.15) < 0.01
    # A random replacement may draw the original id (kept), about 1/vocab of 10%.
    assert abs(to_mask / selected - 0.8) < 0.02
    assert abs(to_random / selected - 0.1) < 0.02
    assert abs(kept / selected - 0.1) < 0.02


def test_masked_lm_is_reproducible_from_the_seed(wordpiece, shakespeare_test):
    def first(seed):
        task = data.masked_lm_dataset(shakespeare_test[:500], wordpiece,
                                      sequence_length=32, batch_size=8, seed=seed)
        return next(iter(task.dataset))[0]["token_ids"].numpy()

    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))


def test_classification_reviews_with_class_weights_and_buckets(wordpiece, data_dir):
    train = data.read_table(data_dir / "reviews" / "train.csv")
    test = data.read_table(data_dir / "reviews" / "test.csv")
    cleaner = text.TextCleaner(strip_html=True)
    with pytest.warns(data.TruncationWarning):
        task = data.classification_dataset(cleaner(train.texts), train.labels, wordpiece,
                                           sequence_length=256, batch_size=64)
    assert task.label_vocabulary.labels == ["great", "other"]
    great = train.labels.count("great")
    assert task.class_weights[0] == pytest.approx(4000 / (2 * great))
    assert task.class_weights[1] == pytest.approx(4000 / (2 * (4000 - great)))
    x, y = next(iter(task.dataset))
    assert set(x) == {"token_ids"} and y.shape == (64,)
    assert x["token_ids"].shape == (64, 256)
    assert (x["token_ids"].numpy()[:, 0] == st.CLS_ID).all()
    with pytest.warns(data.TruncationWarning):
        evaluation = data.classification_dataset(
            cleaner(test.texts), test.labels, wordpiece, sequence_length=256,
            batch_size=64, label_vocabulary=task.label_vocabulary, shuffle=False,
            bucket_boundaries=[32, 64, 128])
    seen = 0
    for x, y in evaluation.dataset:
        length = x["token_ids"].shape[1]
        real = (x["token_ids"].numpy() != st.PAD_ID).sum(axis=1)
        assert real.max() == length  # padded to the longest in its bucket
        seen += len(y)
    assert seen == 1000


def test_token_classification_keeps_one_label_per_word(wordpiece, data_dir):
    brown = data.read_conll(data_dir / "brown" / "train.conll")
    task = data.token_classification_dataset(
        brown.tokens, brown.tags, wordpiece, sequence_length=128, batch_size=512,
        shuffle=False)
    vocabulary = task.label_vocabulary
    index = 0
    for x, y in task.dataset:
        assert set(x) == {"token_ids"}
        labels = y.numpy()
        # Labelled positions are real pieces, never [CLS], [SEP] or padding.
        assert not np.isin(x["token_ids"].numpy()[labels != -100],
                           [st.PAD_ID, st.CLS_ID, st.SEP_ID]).any()
        for row in labels:
            words, tags = brown.tokens[index], brown.tags[index]
            kept = row[row != -100]
            if len(kept) == len(words):
                assert vocabulary.decode(kept) == tags
            else:  # truncated: the first words keep their tags in order
                assert len(kept) < len(words)
                assert vocabulary.decode(kept) == tags[: len(kept)]
            index += 1
    assert index == 51698 == task.num_examples


def test_align_word_labels_first_subword():
    import tensorflow as tf

    pieces = tf.ragged.constant([[[7], [8, 9, 10]], [[11, 12]]], ragged_rank=2)
    token_ids, labels = data.align_word_labels(pieces, tf.ragged.constant([[1, 2], [3]]))
    assert token_ids.to_list() == [[7, 8, 9, 10], [11, 12]]
    assert labels.to_list() == [[1, 2, -100, -100], [3, -100]]


def test_seq2seq_teacher_forcing_on_bible(wordpiece, data_dir):
    pairs = data.read_pairs(data_dir / "bible_en_es" / "valid.tsv")
    task = data.seq2seq_dataset(pairs.sources, pairs.targets, wordpiece,
                                source_length=96, target_length=96, batch_size=32,
                                shuffle=False)
    x, y = next(iter(task.dataset))
    assert set(x) == {"encoder_token_ids", "decoder_token_ids"}
    decoder, labels = x["decoder_token_ids"].numpy(), y.numpy()
    # Each real decoder input predicts one label; padding predicts nothing.
    np.testing.assert_array_equal(labels != -100, decoder != st.PAD_ID)
    assert (decoder[:, 0] == st.BOS_ID).all()
    real = (labels[:, :-1] != -100) & (labels[:, :-1] != st.EOS_ID)
    np.testing.assert_array_equal(decoder[:, 1:][real], labels[:, :-1][real])
    first = wordpiece.encode(pairs.targets[0])
    assert labels[0][labels[0] != -100].tolist() == first[:95] + [st.EOS_ID]
    assert wordpiece.decode(x["encoder_token_ids"][0].numpy()) == \
        wordpiece.normalize(pairs.sources[0])
    # The encoder reads `source [SEP]` then padding only.
    encoder = x["encoder_token_ids"].numpy()
    real = encoder != st.PAD_ID
    assert (np.diff(real.astype(int), axis=1) <= 0).all()
    np.testing.assert_array_equal(encoder[np.arange(len(encoder)), real.sum(1) - 1],
                                  st.EOS_ID)


def test_train_validation_split_is_deterministic(data_dir):
    reviews = data.read_table(data_dir / "reviews" / "train.csv")
    first = data.train_validation_split(reviews.texts, reviews.labels,
                                        validation_fraction=0.1, seed=0)
    second = data.train_validation_split(reviews.texts, reviews.labels,
                                         validation_fraction=0.1, seed=0)
    assert first == second
    (train_texts, _), (valid_texts, _) = first
    assert len(train_texts) + len(valid_texts) == 4000
    assert 400 <= len(valid_texts) <= 403
    # The corpus repeats some reviews; copies stay on one side.
    assert len(set(reviews.texts)) < 4000
    assert set(train_texts).isdisjoint(valid_texts)
    other = data.train_validation_split(reviews.texts, validation_fraction=0.1, seed=1)
    assert other[1] != valid_texts
    with pytest.raises(data.DataError, match="Cannot split 3 examples"):
        data.train_validation_split(["a", "b", "c"], validation_fraction=0.01)


def test_seeded_shuffle(wordpiece, shakespeare_test):
    def first(seed):
        task = data.causal_lm_dataset(shakespeare_test[:1000], wordpiece,
                                      sequence_length=16, batch_size=4, seed=seed)
        return next(iter(task.dataset))[0]["token_ids"].numpy()

    np.testing.assert_array_equal(first(0), first(0))
    assert not np.array_equal(first(0), first(1))
