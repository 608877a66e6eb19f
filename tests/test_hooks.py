"""One test per hook: a plugin registers a real component through it.

`test_every_hook_has_a_test_and_docs` keeps this honest: a new hook in
`keraslm.hookspecs` fails the suite until it gets a `test_hook_<name>` here.
"""

import json
import sys

import keras
import numpy as np
import pytest

import keraslm
from keraslm import cli, hookspecs, plugins, registry


def register(pm, name, **hooks):
    """Registers a plugin object named `name` implementing `hooks`."""
    namespace = {hook: keraslm.hookimpl(function) for hook, function in hooks.items()}
    plugin = type(name, (), {k: staticmethod(v) for k, v in namespace.items()})
    pm.register(plugin, name=name)
    return plugin


def test_hook_register_task_heads(plugin_manager):
    def register_task_heads(register):
        register("fixture_dense_head", keras.layers.Dense, task="fixture_task",
                 description="A dense layer as a head.")

    register(plugin_manager, "heads_plugin", register_task_heads=register_task_heads)
    component = registry.task_heads.get("fixture_dense_head")
    assert component.plugin == "heads_plugin"
    assert component.metadata == {"task": "fixture_task"}
    head = registry.task_heads.build("fixture_dense_head", units=3)
    assert head(np.ones((2, 5), "float32")).shape == (2, 3)


def test_hook_register_losses(plugin_manager):
    def register_losses(register):
        register("fixture_mse", keras.losses.MeanSquaredError)

    register(plugin_manager, "loss_plugin", register_losses=register_losses)
    loss = registry.losses.build("fixture_mse")
    y_true = np.array([[0.0, 1.0], [2.0, 3.0]], "float32")
    y_pred = np.array([[1.0, 1.0], [0.0, 3.0]], "float32")
    assert float(loss(y_true, y_pred)) == pytest.approx(np.mean((y_true - y_pred) ** 2))


def test_hook_register_optimizers(plugin_manager):
    def register_optimizers(register):
        register("fixture_sgd", keras.optimizers.SGD)

    register(plugin_manager, "optimizer_plugin", register_optimizers=register_optimizers)
    optimizer = registry.optimizers.build("fixture_sgd", learning_rate=0.5)
    variable = keras.Variable(np.array([1.0, 2.0], "float32"))
    optimizer.apply([np.array([0.2, -0.4], "float32")], [variable])
    np.testing.assert_allclose(variable.numpy(), [0.9, 2.2], rtol=1e-6)


def test_hook_register_schedules(plugin_manager):
    def exponential(learning_rate, decay_steps, decay_rate):
        return keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps, decay_rate)

    def register_schedules(register):
        register("fixture_exponential", exponential)

    register(plugin_manager, "schedule_plugin", register_schedules=register_schedules)
    schedule = registry.schedules.build("fixture_exponential", learning_rate=0.1,
                                        decay_steps=10, decay_rate=0.5)
    assert float(schedule(20)) == pytest.approx(0.1 * 0.5 ** 2)


def test_hook_register_exporters(plugin_manager, tmp_path):
    from keraslm.exporting import finish

    def export_keras_file(model, path, *, inputs, atol):
        model.save(path)
        reloaded = keras.saving.load_model(path)
        return finish("keras_file", path, model,
                      lambda batch: np.asarray(reloaded(batch)), inputs, atol)

    def register_exporters(register):
        register("keras_file", export_keras_file, file_extension=".keras")

    register(plugin_manager, "exporter_plugin", register_exporters=register_exporters)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = tmp_path / "model.keras"
    result = keraslm.export(model, str(path), format="keras_file")
    assert path.exists() and result.size_bytes == path.stat().st_size
    assert result.max_abs_diff == 0.0
    assert result.shapes_checked == [[1, 4], [3, 4]]
    report = json.loads((tmp_path / "model.keras.report.json").read_text())
    assert report["format"] == "keras_file"


def test_hook_register_tokenizers(plugin_manager):
    class Whitespace:
        def __init__(self, vocabulary):
            self.ids = {word: i for i, word in enumerate(vocabulary)}

        def tokenize(self, text):
            return [self.ids.get(word, 1) for word in text.split()]

    def register_tokenizers(register):
        register("fixture_whitespace", Whitespace)

    register(plugin_manager, "tokenizer_plugin", register_tokenizers=register_tokenizers)
    tokenizer = registry.tokenizers.build(
        "fixture_whitespace", vocabulary=["[PAD]", "[UNK]", "to", "be"])
    assert tokenizer.tokenize("to be or not to be") == [2, 3, 1, 1, 2, 3]


def test_hook_register_metrics(plugin_manager):
    def register_metrics(register):
        register("fixture_mae", keras.metrics.MeanAbsoluteError)

    register(plugin_manager, "metric_plugin", register_metrics=register_metrics)
    metric = registry.metrics.build("fixture_mae")
    metric.update_state(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert float(metric.result()) == pytest.approx(1.5)


def test_hook_register_commands(plugin_manager, capsys):
    def register_commands(cli):
        cli.add_command("fixture-echo", lambda args: print(args.word[::-1]),
                        help="Reverse a word.",
                        configure=lambda parser: parser.add_argument("word"))

    register(plugin_manager, "command_plugin", register_commands=register_commands)
    assert cli.main(["fixture-echo", "keras"]) == 0
    assert capsys.readouterr().out == "sarek\n"


def test_duplicate_command_names_both_plugins(plugin_manager, capsys):
    def register_commands(cli):
        cli.add_command("plugins", lambda args: None, help="Shadow.")

    register(plugin_manager, "shadow_plugin", register_commands=register_commands)
    assert cli.main(["plugins"]) == 2
    error = capsys.readouterr().err
    assert "Command 'plugins' is registered by two plugins" in error
    assert "'keraslm.builtins.commands' and 'shadow_plugin'" in error


def test_every_hook_has_a_test_and_docs():
    module = sys.modules[__name__]
    assert plugins.HOOK_NAMES, "no hooks found in keraslm.hookspecs"
    for hook in plugins.HOOK_NAMES:
        assert callable(getattr(module, f"test_hook_{hook}", None)), (
            f"hook {hook} has no test_hook_{hook} in tests/test_hooks.py")
        doc = getattr(hookspecs, hook).__doc__ or ""
        assert "Called" in doc, f"hook {hook} does not say when it is called"
    assert "register(name, factory" in hookspecs.__doc__
