"""`import keraslm` stays light."""

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "tf2onnx", "onnxruntime", "ai_edge_litert",
         "keras_hub", "tensorflow_text")


def modules_after(code):
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, check=True)
    return set(result.stdout.split())


def test_import_keraslm_loads_no_framework():
    loaded = modules_after("import keraslm")
    assert not loaded & set(HEAVY)


def test_listing_plugins_loads_no_exporter_runtime():
    loaded = modules_after("import keraslm; keraslm.list_plugins(include_builtins=True)")
    assert not loaded & {"tf2onnx", "onnxruntime", "ai_edge_litert", "tensorflow"}
    assert "keraslm_onnx" in loaded  # the plugin itself is loaded, but stays light
