import os

# Tests run with strict plugin loading: a broken plugin is an error, not a
# warning. Tests of the lenient behaviour set the environment explicitly.
os.environ.setdefault("KERASLM_STRICT_PLUGINS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

import keraslm  # noqa: E402


@pytest.fixture
def plugin_manager():
    """The process plugin manager; plugins a test registers are removed after."""
    pm = keraslm.load_plugins()
    before = {name for name, _ in pm.list_name_plugin()}
    yield pm
    for name, plugin in list(pm.list_name_plugin()):
        if name not in before:
            pm.unregister(plugin)


@pytest.fixture(scope="session")
def data_dir():
    """The shared corpora folder (fails, never skips, when it is missing)."""
    import shared_data

    shared_data.path("shakespeare", "train.txt")
    return shared_data.DATA_DIR


@pytest.fixture(scope="session")
def shakespeare_train(data_dir):
    from keraslm import data

    return data.read_text(data_dir / "shakespeare" / "train.txt")


@pytest.fixture(scope="session")
def shakespeare_test(data_dir):
    from keraslm import data

    return data.read_text(data_dir / "shakespeare" / "test.txt")


@pytest.fixture(scope="session")
def entity_tag_run(tmp_path_factory):
    """A small `tag` run on entity tags (IOB2 names made from Brown's
    proper-noun tags, `tests/entity_data.py`): 1,500 training sentences, the
    first 300 of `brown/test.conll` (374 entities) as validation, 120 steps
    at 4e-3 of a 1-layer, 64-wide encoder (12-25 s on 2 cores). Measured:
    entity F1 0.27 (precision 0.31, recall 0.24; 289 entities predicted),
    word accuracy 0.93.

    Returns:
        dict: `result` (the `TrainResult`), `valid` (its file) and
        `valid_sentences` (`[(words, tags)]`).
    """
    import warnings

    import shared_data
    from entity_data import brown_entities, write_conll

    root = tmp_path_factory.mktemp("entity_tag_run")
    train = brown_entities(shared_data.path("brown", "train.conll"), 1500)
    valid = brown_entities(shared_data.path("brown", "test.conll"), 300)
    files = {name: str(write_conll(root / f"{name}.conll", sentences))
             for name, sentences in (("train", train), ("valid", valid))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few long training sentences are truncated
        result = keraslm.train(
            task="tag", train=files["train"], valid=files["valid"],
            output_dir=str(root / "run"), tokenizer="word", vocabulary_size=8000,
            sequence_length=80, batch_size=32, steps=120, learning_rate=4e-3, seed=0,
            model_options={"num_layers": 1, "num_heads": 2, "hidden_dim": 64,
                           "intermediate_dim": 128})
    return {"result": result, "valid": files["valid"], "valid_sentences": valid}


def pytest_collection_modifyitems(session, config, items):
    """Modules with slow tests run first, each module's tests kept together
    and in order: with `-n 2` the long runs start early and the short tests
    fill the end, so neither worker idles while the other finishes a long
    module (the suite's wall time is the slower worker's)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
