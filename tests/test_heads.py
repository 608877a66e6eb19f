"""Task heads built from the registry on a real backbone."""

import keras
import numpy as np
import pytest

import keraslm
from keraslm import registry

SMALL = dict(num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
             max_sequence_length=32)


@pytest.fixture
def encoder():
    keras.utils.set_random_seed(1)
    return keraslm.models.transformer_encoder(vocabulary_size=40, **SMALL)


@pytest.fixture
def token_ids():
    ids = np.random.default_rng(0).integers(5, 40, (3, 9)).astype("int32")
    ids[1, 6:] = 0
    return ids


@pytest.mark.parametrize("name, config, shape", [
    ("masked_lm", {}, (3, 9, 40)),
    ("masked_lm", {"tie_weights": True}, (3, 9, 40)),
    ("classification", {"num_classes": 3, "pooling": "mean"}, (3, 3)),
    ("token_classification", {"num_classes": 5}, (3, 9, 5)),
    ("causal_lm", {}, (3, 9, 40)),
    ("qa_span", {}, (3, 2, 9)),
])
def test_head_builds_saves_and_loads(encoder, token_ids, tmp_path, name, config, shape):
    model = registry.task_heads.build(name, backbone=encoder, **config)
    outputs = np.asarray(model(token_ids))
    assert outputs.shape == shape
    path = tmp_path / f"{name}.keras"
    model.save(path)
    restored = keraslm.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(token_ids)), outputs, atol=1e-6)
    # The backbone is part of the task model, not a copy: same variables.
    backbone_ids = {id(v) for v in encoder.weights}
    assert backbone_ids <= {id(v) for v in model.weights}


def test_masked_lm_tied_to_the_token_embedding(encoder, token_ids):
    model = registry.task_heads.build("masked_lm", backbone=encoder, tie_weights=True)
    embeddings = [w for w in model.weights if "embeddings" in w.path and
                  w.shape == (40, 16)]
    assert len(embeddings) == 1  # one matrix serves input and output
    before = np.asarray(model(token_ids))
    table = encoder.token_embedding.embeddings
    table.assign(table.numpy() * 2.0)
    assert not np.allclose(np.asarray(model(token_ids)), before)
    # logits = transform(hidden) @ embeddings.T + bias, as keras-hub's MaskedLMHead
    bias = model.get_layer("masked_lm_bias").bias
    bias.assign(np.linspace(-1, 1, 40).astype("float32"))
    hidden = np.asarray(model.get_layer("masked_lm_transform")(encoder(token_ids)))
    expected = hidden @ table.numpy().T + bias.numpy()
    np.testing.assert_allclose(np.asarray(model(token_ids)), expected, atol=1e-5)


def test_masked_lm_untied_by_default_has_its_own_projection(encoder, token_ids):
    model = registry.task_heads.build("masked_lm", backbone=encoder)
    dense = model.get_layer("masked_lm_logits")
    assert dense.kernel.shape == (16, 40)
    before = np.asarray(model(token_ids))
    hidden = np.asarray(model.get_layer("masked_lm_transform")(encoder(token_ids)))
    np.testing.assert_allclose(before, hidden @ dense.kernel.numpy() + dense.bias.numpy(),
                               atol=1e-5)


def test_classification_ignores_padding(encoder, token_ids):
    model = registry.task_heads.build("classification", backbone=encoder, num_classes=2,
                                      pooling="max", dropout=0.0)
    padded = np.pad(token_ids, ((0, 0), (0, 4)))
    np.testing.assert_allclose(np.asarray(model(padded)), np.asarray(model(token_ids)),
                               atol=1e-5)


def test_causal_lm_of_a_language_model_is_the_model():
    lm = keraslm.models.transformer_lm(vocabulary_size=40, **SMALL)
    assert registry.task_heads.build("causal_lm", backbone=lm) is lm


def test_seq2seq_head_needs_a_seq2seq_backbone(encoder):
    with pytest.raises(ValueError, match="Received: TransformerEncoder"):
        registry.task_heads.build("seq2seq_lm", backbone=encoder)


def test_transfer_from_a_language_model(token_ids):
    """A pretrained LM's hidden states become a classifier's backbone."""
    lm = keraslm.models.transformer_lm(vocabulary_size=40, **SMALL)
    classifier = registry.task_heads.build("classification",
                                           backbone=lm.hidden_states_model(),
                                           num_classes=2, pooling="mean")
    assert np.asarray(classifier(token_ids)).shape == (3, 2)
    lm_variables = {id(v) for v in lm.weights}
    assert lm_variables & {id(v) for v in classifier.weights}


def test_auto_pooling_is_mean_for_recurrent_backbones(encoder, token_ids):
    """A forward LSTM's first position has seen one token: "cls" pooling
    there gives every text the same logits (ROC-AUC 0.5 on reviews)."""
    lstm = keraslm.models.lstm_lm(vocabulary_size=40, units=8, hidden_dim=8)
    recurrent = registry.task_heads.build("classification", backbone=lstm.hidden_states_model(),
                                          num_classes=2)
    attention = registry.task_heads.build("classification", backbone=encoder, num_classes=2)
    pooling = {model: next(layer.pooling for layer in model.layers
                           if isinstance(layer, keraslm.heads.ClassificationHead))
               for model in (recurrent, attention)}
    assert pooling[recurrent] == "mean" and pooling[attention] == "cls"
    # Texts that share their first token get different outputs.
    same_start = token_ids.copy()
    same_start[:, 0] = 7
    outputs = np.asarray(recurrent(same_start))
    assert np.abs(outputs[0] - outputs[2]).max() > 1e-4
