"""`keraslm.interpret` and `keraslm plot`: attention scores against NumPy and
Keras' own attention given the same weights, saliency against an independent
GradientTape and finite differences, ROC points against scikit-learn, and the
pictures of small runs on real data (a bag-of-words reviews classifier, tiny
Transformer and LSTM language models), bad requests refused before anything
is drawn."""

import csv
import os
import shutil
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keraslm
import shared_data
from keraslm import cli, interpret

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) of a PNG file, read from its header."""
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == PNG_SIGNATURE, path
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


# --------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A bag-of-words classifier of reviews (word embeddings + learned
    positions, layer norm, mean pooling, no Transformer layer) trained on all
    4,000 training reviews and tested on the first 300 test reviews; and two
    language models trained for 2 steps on a slice of Shakespeare (a
    2-layer Transformer and an LSTM), which the attention pictures and the
    refusals need, not their quality."""
    root = tmp_path_factory.mktemp("interpret")
    with open(shared_data.path("reviews", "test.csv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    test = root / "reviews_test.csv"
    with open(test, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows[:300])
    text = shared_data.path("shakespeare", "valid.txt").read_text(encoding="utf-8")[:4000]
    (root / "lines.txt").write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long reviews are truncated
        bag = keraslm.train(
            task="classify", train=str(shared_data.path("reviews", "train.csv")),
            test=str(test), tokenizer="word", lowercase=True, vocabulary_size=1500,
            sequence_length=128, batch_size=32, steps=400, learning_rate=5e-3, seed=0,
            model_options={"num_layers": 0, "num_heads": 1, "hidden_dim": 32,
                           "intermediate_dim": 32, "max_sequence_length": 128},
            head_options={"pooling": "mean"}, output_dir=str(root / "bag"), verbose=False)
        lm_options = dict(task="lm", train=str(root / "lines.txt"), tokenizer="character",
                          sequence_length=24, batch_size=4, steps=2, seed=0, verbose=False)
        transformer = keraslm.train(
            model="transformer_lm", output_dir=str(root / "transformer"),
            model_options={"num_layers": 2, "num_heads": 2, "hidden_dim": 16,
                           "intermediate_dim": 32}, **lm_options)
        lstm = keraslm.train(model="lstm_lm", output_dir=str(root / "lstm"),
                             model_options={"hidden_dim": 8, "units": 8}, **lm_options)
    return {"bag": bag.run_dir, "transformer": transformer.run_dir, "lstm": lstm.run_dir,
            "test_rows": rows, "root": root}


def plot(capsys, *args):
    status = cli.main(["plot", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ---------------------------------------------------------------- attention
def numpy_layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return ((x - mean) / np.sqrt(variance + layer.epsilon) * np.asarray(layer.gamma)
            + np.asarray(layer.beta))


def numpy_attention(x, attention, allowed):
    """softmax(Q K^T / sqrt(head_dim)) of a fused-QKV `MultiHeadAttention`,
    recomputed from its kernels: `x` (batch, length, hidden), `allowed`
    (batch, query, key) -> (batch, heads, query, key), NaN where a row has
    no allowed key."""
    qkv = np.einsum("btm,mkhd->btkhd", x, np.asarray(attention.qkv_kernel))
    qkv = qkv + np.asarray(attention.qkv_bias)
    query, key = qkv[:, :, 0], qkv[:, :, 1]
    scores = np.einsum("bthd,bshd->bhts", query, key) / np.sqrt(query.shape[-1])
    scores = np.where(allowed[:, None], scores, -np.inf)
    with np.errstate(invalid="ignore"):
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        return weights / weights.sum(-1, keepdims=True)


def sharpen(model, factor=3.0):
    """Scales the query/key kernels so that random attention is far from
    uniform (a dropped scale or mask then shows)."""
    for layer in model._flatten_layers():
        if isinstance(layer, keraslm.layers.MultiHeadAttention):
            kernel = np.asarray(layer.qkv_kernel).copy()
            kernel[:, :2] *= factor
            layer.qkv_kernel.assign(kernel)


def test_attention_scores_of_a_causal_lm_equal_numpy_from_the_kernels():
    keras.utils.set_random_seed(1)
    model = keraslm.models.transformer_lm(
        vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=12)
    sharpen(model)
    # Row 0 left-padded (padded keys below the diagonal), row 1 right-padded.
    ids = np.array([[0, 0, 7, 12, 5, 30, 9, 2], [3, 17, 8, 25, 11, 6, 0, 0]], "int32")
    scores = interpret.attention_scores(model, ids)
    assert scores.shape == (2, 2, 2, 8, 8)
    # Each block's input from the model's own graph (Keras' public API).
    names = ["embeddings_dropout", "transformer_layer_0"]
    inputs = keras.Model(model.input, [model.get_layer(n).output for n in names])(ids)
    real = ids != 0
    length = ids.shape[1]
    allowed = np.tril(np.ones((length, length), bool))[None] & real[:, None, :]
    for index, block in enumerate(model.transformer_layers):
        x = numpy_layer_norm(np.asarray(inputs[index]), block.self_attention_layer_norm)
        expected = numpy_attention(x, block.self_attention, allowed)
        for row in range(2):
            queries = np.flatnonzero(real[row])  # padded queries see no key
            np.testing.assert_allclose(scores[row, index][:, queries],
                                       expected[row][:, queries], atol=2e-6)
    for row in range(2):
        queries = np.flatnonzero(real[row])
        kept = scores[row][:, :, queries]             # (layers, heads, real queries, keys)
        np.testing.assert_allclose(kept.sum(-1), 1.0, atol=1e-5)
        for position in queries:
            assert np.all(scores[row, :, :, position, position + 1:] == 0)  # causal
        assert np.all(kept[..., ~real[row]] == 0)    # padded keys
    # One sequence alone: (layers, heads, query, key), equal to its batch row.
    alone = interpret.attention_scores(model, ids[1, :6].tolist())
    assert alone.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(alone, scores[1, :, :, :6, :6], atol=1e-6)


def test_attention_scores_of_an_encoder_classifier_equal_keras_multi_head_attention():
    """A post-LN encoder with a classification head: the task model a
    classify run saves. Keras' `MultiHeadAttention` with the same weights,
    on the same block inputs, gives the same probabilities."""
    keras.utils.set_random_seed(2)
    encoder = keraslm.models.transformer_encoder(
        vocabulary_size=50, num_layers=2, num_heads=4, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=10)
    model = keraslm.registry.task_heads.build("classification", backbone=encoder,
                                              num_classes=3)
    sharpen(model)
    ids = np.array([[2, 14, 9, 33, 21, 3, 0, 0, 0], [2, 40, 7, 3, 0, 0, 0, 0, 0]], "int32")
    scores = interpret.attention_scores(model, ids)
    assert scores.shape == (2, 2, 4, 9, 9)
    blocks = [model.get_layer(f"transformer_layer_{i}") for i in range(2)]
    inputs = keras.Model(model.input, [model.get_layer("embeddings_dropout").output,
                                       blocks[0].output])(ids)
    real = ids != 0
    mask = np.repeat(real[:, None, :], ids.shape[1], axis=1)
    for index, block in enumerate(blocks):
        ours = block.self_attention
        heads, head_dim = 4, 4
        reference = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=head_dim)
        x = np.asarray(inputs[index])
        reference(x, x)  # builds it
        qkv, qkv_bias = np.asarray(ours.qkv_kernel), np.asarray(ours.qkv_bias)
        reference.set_weights([qkv[:, 0], qkv_bias[0], qkv[:, 1], qkv_bias[1], qkv[:, 2],
                               qkv_bias[2], np.asarray(ours.output_kernel),
                               np.asarray(ours.output_bias)])
        _, expected = reference(x, x, attention_mask=mask, return_attention_scores=True)
        np.testing.assert_allclose(scores[:, index], np.asarray(expected), atol=2e-6)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    for row in range(2):
        assert np.all(scores[row][..., ~real[row]] == 0)  # padded keys, every query
        assert np.triu(scores[row, 0, 0], 1).max() > 0.01  # not causal


def test_attention_scores_refuse_models_without_attention():
    lstm = keraslm.models.lstm_lm(vocabulary_size=30, hidden_dim=8, units=8)
    with pytest.raises(ValueError, match="Transformer model.*LSTMLM .* without attention.*LSTMStack"):
        interpret.attention_scores(lstm, [2, 5, 6])
    bag = keraslm.models.transformer_encoder(
        vocabulary_size=30, num_layers=0, num_heads=1, hidden_dim=8, intermediate_dim=8,
        max_sequence_length=8)
    with pytest.raises(ValueError, match="without attention"):
        interpret.attention_scores(bag, [2, 5, 6])
    with pytest.raises(ValueError, match="integer array.*Received: shape \\(0,\\)"):
        interpret.attention_scores(bag, [])
    translator = keraslm.models.seq2seq_transformer(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=8)
    with pytest.raises(ValueError, match="one input.*seq2seq"):
        interpret.attention_scores(translator, [2, 5, 6])


# ----------------------------------------------------------------- saliency
class ListTokenizer:
    """A word-level stand-in for a run's tokenizer: ids from a fixed list."""

    from keraslm.text import special_tokens as _special

    cls_id, sep_id = _special.CLS_ID, _special.SEP_ID
    special_token_ids = {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}

    def __init__(self, words):
        self.vocabulary = list(self._special.SPECIAL_TOKENS) + list(words)

    def encode(self, text):
        return [self.vocabulary.index(w) if w in self.vocabulary else 1
                for w in text.split()]

    def id_to_token(self, token_id):
        return self.vocabulary[token_id]


WORDS = "the coffee was great but price awful & <b>".split()


def encoder_classifier(num_layers=1, seed=3):
    keras.utils.set_random_seed(seed)
    encoder = keraslm.models.transformer_encoder(
        vocabulary_size=5 + len(WORDS), num_layers=num_layers, num_heads=2,
        hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    return keraslm.registry.task_heads.build("classification", backbone=encoder,
                                             num_classes=3, pooling="mean", dropout=0.0)


def log_probability_by_layers(model, ids, target, scale_row=None, factor=1.0, tape=None):
    """The target's log-probability from the model's layers called one by
    one (not through its graph), and the embedding rows they pool: an
    independent path to what `token_saliency` differentiates."""
    token_ids = tf.constant([ids], "int32")
    x = model.get_layer("token_embedding")(token_ids)
    x = x + model.get_layer("position_embedding")(x)
    hidden = model.get_layer("embeddings_layer_norm")(x)
    if scale_row is not None:
        scale = np.ones((1, len(ids), 1), "float32")
        scale[0, scale_row] = factor
        hidden = hidden * scale
    if tape is not None:
        tape.watch(hidden)
    mask = tf.not_equal(token_ids, 0)
    states = hidden
    for layer in model.layers:
        if isinstance(layer, keraslm.layers.TransformerEncoderBlock):
            states = layer(states, padding_mask=mask)
    logits = model.get_layer("classification_head")(states, padding_mask=mask)
    return tf.nn.log_softmax(logits)[0, target], hidden


def test_token_saliency_equals_an_independent_gradient_tape_and_finite_differences():
    model = encoder_classifier()
    tokenizer = ListTokenizer(WORDS)
    text = "the coffee was great but the price awful"
    result = interpret.token_saliency(model, tokenizer, text, target=1)
    ids = [2, *tokenizer.encode(text), 3]
    assert result.token_ids == ids and result.target == 1 and result.target_label == "1"
    assert [p.label for p in result.pieces] == ["[CLS]", *text.split(), "[SEP]"]
    with tf.GradientTape() as tape:
        score, hidden = log_probability_by_layers(model, ids, 1, tape=tape)
    gradient = tape.gradient(score, hidden)
    expected = np.sum(np.asarray(gradient * hidden)[0], axis=-1)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-4, atol=1e-6)
    # Finite differences: d score / d s of embedding i scaled by s, at s = 1.
    epsilon = 1e-2
    for position in range(len(ids)):
        up, _ = log_probability_by_layers(model, ids, 1, position, 1 + epsilon)
        down, _ = log_probability_by_layers(model, ids, 1, position, 1 - epsilon)
        slope = (float(up) - float(down)) / (2 * epsilon)
        assert result.scores[position] == pytest.approx(slope, rel=2e-2, abs=2e-4), position
    probabilities = np.exp(np.asarray(tf.nn.log_softmax(model(np.array([ids])))))[0]
    np.testing.assert_allclose(result.probabilities, probabilities, rtol=1e-5)
    norms = interpret.token_saliency(model, tokenizer, text, target=1, reduction="l2")
    np.testing.assert_allclose(norms.scores,
                               np.linalg.norm(np.asarray(gradient * hidden)[0], axis=-1),
                               rtol=1e-4, atol=1e-7)
    # Default target: the predicted class; a label name with `labels`.
    assert interpret.token_saliency(model, tokenizer, text).target == np.argmax(probabilities)
    named = interpret.token_saliency(model, tokenizer, text, "b", labels=["a", "b", "c"])
    np.testing.assert_allclose(named.scores, result.scores, rtol=1e-6)


def test_token_saliency_of_an_lstm_classifier_equals_an_independent_gradient_tape():
    keras.utils.set_random_seed(4)
    lstm = keraslm.models.lstm_lm(vocabulary_size=5 + len(WORDS), hidden_dim=8, units=8)
    model = keraslm.registry.task_heads.build(
        "classification", backbone=lstm.hidden_states_model(), num_classes=2, dropout=0.0)
    tokenizer = ListTokenizer(WORDS)
    result = interpret.token_saliency(model, tokenizer, "coffee was awful", target=0)
    ids = tf.constant([result.token_ids], "int32")
    embedding = model.get_layer("token_embedding")
    vectors = embedding(ids)
    with tf.GradientTape() as tape:
        tape.watch(vectors)
        states = model.get_layer("recurrent_stack")(vectors)
        logits = model.get_layer("classification_head")(states,
                                                        padding_mask=tf.not_equal(ids, 0))
        score = tf.nn.log_softmax(logits)[0, 0]
    expected = np.sum(np.asarray(tape.gradient(score, vectors) * vectors)[0], axis=-1)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-4, atol=1e-7)


def test_token_saliency_refuses_bad_requests():
    model, tokenizer = encoder_classifier(num_layers=0), ListTokenizer(WORDS)
    with pytest.raises(ValueError, match="`target` must be a class index in \\[0, 3\\) or one "
                                         "of the labels.*Received: target='great'"):
        interpret.token_saliency(model, tokenizer, "great coffee", "great")
    with pytest.raises(ValueError, match="`target`.*Received: target=3"):
        interpret.token_saliency(model, tokenizer, "great coffee", 3)
    with pytest.raises(ValueError, match="non-empty string. Received: '  '"):
        interpret.token_saliency(model, tokenizer, "  ")
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        interpret.token_saliency(model, tokenizer, "great", reduction="max")
    with pytest.raises(ValueError, match="`labels` must name the model's 3 classes"):
        interpret.token_saliency(model, tokenizer, "great", labels=["a", "b"])
    lm = keraslm.models.transformer_lm(vocabulary_size=20, num_layers=1, num_heads=1,
                                       hidden_dim=8, intermediate_dim=8,
                                       max_sequence_length=8)
    with pytest.raises(ValueError, match="classification model .*Received outputs of shape"):
        interpret.token_saliency(lm, tokenizer, "great")


def test_saliency_html_escapes_tokens_and_the_png_is_written(tmp_path):
    model, tokenizer = encoder_classifier(num_layers=0), ListTokenizer(WORDS)
    result = interpret.token_saliency(model, tokenizer, "<b> great & awful", 0,
                                      labels=["go<od>", "bad", "other"])
    page = interpret.saliency_html(result, title="A <title> & more")
    assert "<b>" not in page and "go<od>" not in page
    assert "&lt;b&gt;</span>" in page and "&amp;</span>" in page
    assert "<title>A &lt;title&gt; &amp; more</title>" in page
    assert "target &#x27;go&lt;od&gt;&#x27;" in page
    # One highlighted span per token, its score in the tooltip.
    assert page.count('<span class="token') == len(result.token_ids)
    assert f'title="great: {result.scores[2]:+.4g}"' in page
    path = interpret.write_saliency_html(result, tmp_path / "saliency.html", title="t")
    assert open(path, encoding="utf-8").read() == interpret.saliency_html(result, "t")
    width, height = png_size(interpret.plot_saliency(result, str(tmp_path / "s.png")))
    assert width == 1100 and 300 < height < 1000


# ------------------------------------------------------------------ ROC
def test_roc_curve_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sklearn_roc_curve

    rng = np.random.default_rng(0)
    for size, levels in ((200, 7), (57, 1000), (12, 2)):
        truth = rng.integers(0, 2, size)
        truth[:2] = (0, 1)
        scores = np.round(rng.random(size) * levels) / levels + 0.3 * truth  # many ties
        fpr, tpr, thresholds = interpret.roc_curve(truth == 1, scores)
        expected = sklearn_roc_curve(truth, scores, drop_intermediate=False)
        np.testing.assert_allclose(fpr, expected[0])
        np.testing.assert_allclose(tpr, expected[1])
        np.testing.assert_allclose(thresholds[1:], expected[2][1:])
        assert thresholds[0] == np.inf
        assert interpret.roc_auc(fpr, tpr) == pytest.approx(roc_auc_score(truth, scores))
    with pytest.raises(ValueError, match="positive and negative examples. Received: 3 "
                                         "positive and 0 negative"):
        interpret.roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="same length"):
        interpret.roc_curve([1, 0], [0.5])


def test_roc_and_confusion_pictures_of_several_classes(tmp_path):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 300)
    probabilities = rng.dirichlet(np.ones(4), 300)
    probabilities[np.arange(300), truth] += 0.4
    probabilities /= probabilities.sum(1, keepdims=True)
    predictions = interpret.ClassificationPredictions(truth, probabilities,
                                                      ["a", "b", "c", "d"], "synthetic")
    for index in range(4):  # the one-vs-rest curves the picture draws
        fpr, tpr, _ = interpret.roc_curve(truth == index, probabilities[:, index])
        assert interpret.roc_auc(fpr, tpr) == pytest.approx(
            roc_auc_score(truth == index, probabilities[:, index]))
    for draw, name in ((interpret.plot_roc_curve, "roc.png"),
                       (interpret.plot_confusion_matrix, "confusion.png")):
        width, height = png_size(draw(predictions, str(tmp_path / name), title="t"))
        assert width > 400 and height > 400
    with pytest.raises(ValueError, match="`positive_label` only applies to two classes"):
        interpret.plot_roc_curve(predictions, str(tmp_path / "x.png"), positive_label="a")
    assert not os.path.exists(tmp_path / "x.png")


# ------------------------------------------------- a trained reviews classifier
def vader_sentiment_words():
    """The tokens VADER (vaderSentiment, Hutto & Gilbert 2014) reads as
    sentiment: its lexicon, its negations (with the stems our word tokenizer
    leaves of "didn't": `didn`, `t`), its boosters, and the two its rules
    weigh, the contrastive "but" and the emphatic "!"."""
    import vaderSentiment.vaderSentiment as vader

    negations = set(vader.NEGATE) | {"t"} | {
        word[:-1] for word in vader.NEGATE if word.endswith("nt") and word[-2] == "n"}
    return (set(vader.SentimentIntensityAnalyzer().lexicon) | negations
            | set(vader.BOOSTER_DICT) | {"but", "!"})


def test_saliency_of_a_bag_of_words_is_its_share_of_the_logits(runs):
    """With mean pooling straight into the logits, gradient x input of token
    i is (h_i . (w_target - sum_k p_k w_k)) / n, recomputed in NumPy from the
    trained weights."""
    from keraslm.training import load_run

    config, task, model, tokenizer = load_run(runs["bag"])
    text = runs["test_rows"][310]["text"]
    result = interpret.token_saliency(model, tokenizer, text, "other",
                                      labels=task.label_vocabulary.labels,
                                      sequence_length=config.sequence_length)
    assert result.token_ids[0] == tokenizer.cls_id and len(result.token_ids) <= 128
    hidden = np.asarray(keras.Model(model.input, model.get_layer("embeddings_dropout").output)(
        np.array([result.token_ids])))[0]
    dense = model.get_layer("classification_head").output_dense
    weights, bias = np.asarray(dense.kernel), np.asarray(dense.bias)
    logits = hidden.mean(0) @ weights + bias
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    target = task.label_vocabulary.labels.index("other")
    expected = hidden @ (weights[:, target] - weights @ probabilities) / len(hidden)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, probabilities, rtol=1e-4)


def test_most_salient_tokens_of_a_reviews_classifier_are_sentiment_words(runs):
    """For 200 held-out reviews, the token with the largest |saliency| is one
    VADER reads as sentiment in more than half of them, several times as
    often as a token drawn at random from the same review. Measured: 0.67
    (VADER's lexicon alone: 0.36; a random token: 0.13)."""
    from keraslm.training import load_run

    config, task, model, tokenizer = load_run(runs["bag"])
    sentiment = vader_sentiment_words()
    top_hits, chance = [], []
    for row in runs["test_rows"][300:500]:
        result = interpret.token_saliency(model, tokenizer, row["text"],
                                          labels=task.label_vocabulary.labels,
                                          sequence_length=config.sequence_length)
        words = [i for i, piece in enumerate(result.pieces) if not piece.special]
        top = max(words, key=lambda i: abs(result.scores[i]))
        top_hits.append(result.pieces[top].label in sentiment)
        chance.append(np.mean([result.pieces[i].label in sentiment for i in words]))
    assert np.mean(top_hits) > 0.55, (np.mean(top_hits), np.mean(chance))
    assert np.mean(top_hits) > 3 * np.mean(chance), (np.mean(top_hits), np.mean(chance))


def test_predictions_of_a_run_give_its_test_metrics(runs):
    """The predictions behind the confusion matrix and ROC pictures are the
    run's: scikit-learn's confusion matrix and ROC-AUC on them equal the test
    metrics the trainer wrote."""
    import json

    from sklearn.metrics import confusion_matrix, roc_auc_score

    predictions = interpret.classification_predictions(runs["bag"])
    test = json.load(open(os.path.join(runs["bag"], "metrics.json")))["test"]
    assert predictions.labels == test["labels"] == ["great", "other"]
    assert predictions.source.startswith("test file ") and len(predictions.label_ids) == 300
    truth = [test["labels"].index(row["label"]) for row in runs["test_rows"][:300]]
    np.testing.assert_array_equal(predictions.label_ids, truth)
    assert confusion_matrix(truth, predictions.probabilities.argmax(1)).tolist() == \
        test["confusion_matrix"]
    fpr, tpr, _ = interpret.roc_curve(predictions.label_ids == 1,
                                      predictions.probabilities[:, 1])
    assert interpret.roc_auc(fpr, tpr) == pytest.approx(
        roc_auc_score(truth, predictions.probabilities[:, 1]), abs=1e-12)
    assert interpret.roc_auc(fpr, tpr) == pytest.approx(test["roc_auc"], abs=1e-6)
    assert test["roc_auc"] > 0.75  # it learned something


# --------------------------------------------------------------- keraslm plot
def test_plot_writes_the_pictures_of_a_classify_run(runs, tmp_path, capsys):
    status, out, err = plot(capsys, runs["bag"])
    assert status == 0, err
    names = ("training_curve.png", "confusion_matrix.png", "roc_curve.png")
    assert out.split() == [os.path.join(runs["bag"], name) for name in names]
    assert "test file" in err and "(300 examples)" in err
    for path in out.split():
        png_size(path)
    status, out, err = plot(capsys, runs["bag"], "--saliency",
                            "Great coffee, <b>awful</b> price & slow delivery.",
                            "--target", "great", "-o", tmp_path / "pictures")
    assert status == 0, err
    page, picture = out.split()
    assert page == str(tmp_path / "pictures" / "saliency.html")
    assert picture == str(tmp_path / "pictures" / "saliency.png")
    html = open(page, encoding="utf-8").read()
    assert "target &#x27;great&#x27;" in html and "&lt;" in html and "<b>" not in html
    png_size(picture)
    # --data: another labelled file.
    data = tmp_path / "few.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(runs["test_rows"][500:560])
    status, out, err = plot(capsys, runs["bag"], "--roc", "--data", data, "-o", tmp_path)
    assert status == 0, err
    assert out.split() == [str(tmp_path / "roc_curve.png")] and "(60 examples)" in err


def test_plot_attention_of_a_transformer_run(runs, tmp_path, capsys):
    status, out, err = plot(capsys, runs["transformer"], "--attention", "To be, or not",
                            "--curves", "-o", tmp_path)
    assert status == 0, err
    assert out.split() == [str(tmp_path / "training_curve.png"),
                           str(tmp_path / "attention.png")]
    width, height = png_size(tmp_path / "attention.png")  # 2 layers x 2 heads, 13 tokens
    assert width > height > 500


@pytest.mark.parametrize("run, args, message", [
    ("lstm", ["--attention", "To be"],
     "--attention needs a Transformer model.*Received a run of model 'lstm_lm'"),
    ("bag", ["--attention", "Great coffee"],
     "--attention needs a Transformer model.*model 'transformer_encoder'.*without attention"),
    ("lstm", ["--saliency", "To be"],
     "--saliency needs a run of a classification task \\(classify.*Received a run of task 'lm'"),
    ("transformer", ["--confusion", "--roc"], "--confusion, --roc need a run of a classif"),
    ("bag", ["--saliency", "Great", "--target", "excellent"],
     "`--target` must be one of the run's labels \\['great', 'other'\\]. Received: "
     "--target='excellent'"),
    ("bag", ["--attention", " "], "`--attention` needs a non-empty text. Received: "),
    ("bag", ["--target", "great"], "`--target` applies to --saliency"),
    ("bag", ["--roc", "--data", "missing.csv"], "`--data` file not found"),
    ("transformer", ["--data", "x.csv"], "`--data` applies to --confusion and --roc"),
    ("transformer", ["--attention", "To be", "--checkpoint", "latest"],
     "--checkpoint must be one of"),
])
def test_plot_refuses_bad_requests_before_drawing(runs, run, args, message, tmp_path, capsys):
    status, out, err = plot(capsys, runs[run], "--curves", *args, "-o", tmp_path)
    assert status == 1 and out == ""
    assert err.startswith("keraslm plot: error: ")
    assert len(err.strip().splitlines()) == 1, err
    import re

    assert re.search(message, err), err
    assert os.listdir(tmp_path) == []  # not even the training curve


def test_plot_refuses_a_run_without_its_model(runs, tmp_path, capsys):
    run = tmp_path / "unfinished"
    shutil.copytree(runs["transformer"], run, ignore=shutil.ignore_patterns("*.keras"))
    status, _, err = plot(capsys, run, "--attention", "To be", "-o", tmp_path / "out")
    assert status == 1
    assert f"--attention needs the run's model: {run / 'model.keras'} does not exist" in err
    status, out, err = plot(capsys, run, "-o", tmp_path / "out")  # curves need no model
    assert status == 0 and out.split() == [str(tmp_path / "out" / "training_curve.png")]
    status, _, err = plot(capsys, tmp_path / "nothing")
    assert status == 1 and "not a keraslm run directory (no config.json)" in err
