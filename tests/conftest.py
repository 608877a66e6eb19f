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
