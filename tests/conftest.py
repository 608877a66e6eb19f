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
