"""Every public layer is documented, and its docstring example runs."""

import inspect
import re

import pytest

import keraslm.layers
import keraslm.testing

EXAMPLE = re.compile(r"```python\n(.*?)```", re.DOTALL)
LAYERS = [getattr(keraslm.layers, name) for name in keraslm.layers.__all__]


@pytest.mark.parametrize("layer_cls", LAYERS, ids=lambda cls: cls.__name__)
def test_layer_docstring_has_args_and_runnable_example(layer_cls):
    doc = inspect.getdoc(layer_cls)
    assert doc and "Args:" in doc and "Example:" in doc
    for parameter in inspect.signature(layer_cls.__init__).parameters:
        if parameter not in ("self", "kwargs"):
            assert f"{parameter}:" in doc, f"`{parameter}` is not documented"
    examples = EXAMPLE.findall(doc)
    assert examples and f"keraslm.layers.{layer_cls.__name__}" in examples[0]
    for example in examples:
        exec(compile(example, f"<{layer_cls.__name__} example>", "exec"), {})


def test_testing_examples_run():
    for function in (keraslm.testing.run_layer_test, keraslm.testing.run_model_saving_test):
        for example in EXAMPLE.findall(inspect.getdoc(function)):
            exec(compile(example, f"<{function.__name__} example>", "exec"), {})
