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
    def mean_pool_head(backbone, num_classes):
        pooled = keras.layers.GlobalAveragePooling1D(name="fixture_pool")(backbone.output)
        logits = keras.layers.Dense(num_classes, name="fixture_logits")(pooled)
        return keras.Model(backbone.input, logits)

    def register_task_heads(register):
        register("fixture_mean_pool", mean_pool_head, task="classify",
                 description="Mean-pooled hidden states -> class logits.")

    register(plugin_manager, "heads_plugin", register_task_heads=register_task_heads)
    component = registry.task_heads.get("fixture_mean_pool")
    assert component.plugin == "heads_plugin"
    assert component.metadata == {"task": "classify"}
    assert component.accepts() == {"backbone", "num_classes"}
    encoder = keraslm.models.transformer_encoder(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=8).hidden_states_model()
    model = registry.task_heads.build("fixture_mean_pool", backbone=encoder, num_classes=3)
    token_ids = np.random.default_rng(0).integers(1, 50, (2, 8)).astype("int32")
    assert model(token_ids).shape == (2, 3)
    # The head extends the backbone's own graph: its layers are shared, and the
    # logits are the Dense layer applied to the mean of the hidden states.
    backbone_layers = {id(layer) for layer in encoder.layers}
    assert backbone_layers <= {id(layer) for layer in model.layers}
    dense = model.get_layer("fixture_logits")
    hidden = np.asarray(encoder(token_ids)).mean(axis=1)
    expected = hidden @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(np.asarray(model(token_ids)), expected, atol=1e-5)


def test_hook_register_losses(plugin_manager):
    def register_losses(register):
        register("fixture_mse", keras.losses.MeanSquaredError)

    register(plugin_manager, "loss_plugin", register_losses=register_losses)
    loss = registry.losses.build("fixture_mse")
    y_true = np.array([[0.0, 1.0], [2.0, 3.0]], "float32")
    y_pred = np.array([[1.0, 1.0], [0.0, 3.0]], "float32")
    assert float(loss(y_true, y_pred)) == pytest.approx(np.mean((y_true - y_pred) ** 2))


def test_a_loss_forwarding_kwargs_gets_only_what_its_bases_take(plugin_manager):
    """A Keras Loss subclass passing **kwargs to `Loss.__init__` is offered
    `ignore_class` only if some class in its chain takes it."""
    class Scaled(keras.losses.MeanSquaredError):
        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, y_true, y_pred):
            return self.scale * super().call(y_true, y_pred)

    def register_losses(register):
        register("fixture_scaled", Scaled)

    register(plugin_manager, "scaled_plugin", register_losses=register_losses)
    component = registry.losses.get("fixture_scaled")
    assert component.accepts() == {"scale", "name", "reduction", "dtype"}
    loss = component.build_with(given={"scale": 2.0}, offered={"ignore_class": 0})
    y_true = np.array([[0.0, 1.0]], "float32")
    y_pred = np.array([[1.0, 1.0]], "float32")
    assert float(loss(y_true, y_pred)) == pytest.approx(2.0 * 0.5)
    with pytest.raises(registry.UnacceptedOptionError, match="does not take 'gamma'"):
        component.build_with(given={"gamma": 2.0})


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
    def register_commands(register):
        register("fixture-echo", lambda args: print(args.word[::-1]),
                 description="Reverse a word.",
                 configure=lambda parser: parser.add_argument("word"))

    register(plugin_manager, "command_plugin", register_commands=register_commands)
    assert registry.commands.get("fixture-echo").plugin == "command_plugin"
    assert cli.main(["fixture-echo", "keras"]) == 0
    assert capsys.readouterr().out == "sarek\n"


def test_a_failing_command_prints_one_line_naming_its_plugin(plugin_manager, capsys,
                                                            monkeypatch):
    def broken(args):
        return {}["missing"]  # a bug: KeyError

    def refuses(args):
        raise ValueError("`word` must be lowercase. Received: word='Keras'")

    def register_commands(register):
        register("fixture-broken", broken, description="Fails.")
        register("fixture-refuses", refuses, description="Refuses its input.")

    monkeypatch.delenv("KERASLM_DEBUG", raising=False)
    register(plugin_manager, "failing_plugin", register_commands=register_commands)
    assert cli.main(["fixture-broken"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "unexpected error (command from plugin 'failing_plugin'): KeyError: 'missing'" in error
    assert "test_hooks.py:" in error and "KERASLM_DEBUG=1" in error
    # A user error is the message itself, without the bug notice.
    assert cli.main(["fixture-refuses"]) == 1
    assert capsys.readouterr().err == (
        "keraslm fixture-refuses: error: `word` must be lowercase. Received: word='Keras'\n")
    monkeypatch.setenv("KERASLM_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["fixture-broken"])


def test_hook_register_tasks(plugin_manager, tmp_path):
    import dataclasses

    from keraslm.tasks import LanguageModelTask, get_task
    from keraslm.tasks.lm import LanguageModelOptions
    from keraslm.training import TrainConfig

    @dataclasses.dataclass  # a task that extends another extends its options
    class FirstLinesOptions(LanguageModelOptions):
        lines: int = 10   # read only the first lines

    class FirstLinesTask(LanguageModelTask):
        name = "fixture_first_lines"
        Options = FirstLinesOptions

        def read(self, path):
            return super().read(path)[:self.options.lines]

    def register_tasks(register):
        register("fixture_first_lines", FirstLinesTask, description="First lines only.")

    register(plugin_manager, "task_plugin", register_tasks=register_tasks)
    assert registry.tasks.get("fixture_first_lines").plugin == "task_plugin"
    text = tmp_path / "text.txt"
    text.write_text("".join(f"line {i}\n" for i in range(50)))
    # A top-level key that is the task's option goes to task_options.
    config = TrainConfig.from_dict({"task": "fixture_first_lines", "train": str(text),
                                    "lines": 3}).validate()
    assert config.task_options == {"lines": 3} and config.model_name == "transformer_lm"
    assert get_task(config).options.eval_stride is None  # the inherited option
    task = get_task(config)
    assert task.read(str(text)) == ["line 0", "line 1", "line 2"]
    with pytest.raises(ValueError, match=r"`lines` in .* must be of type int. "
                                         r"Received: lines='3'"):
        TrainConfig(task="fixture_first_lines", train=str(text),
                    task_options={"lines": "3"}).validate()
    # The registered name and the class's `name` must agree.
    def register_misnamed(register):
        register("fixture_misnamed", FirstLinesTask)

    register(plugin_manager, "misnamed_plugin", register_tasks=register_misnamed)
    with pytest.raises(registry.InvalidComponentError, match="Expected name = "
                                                             "'fixture_misnamed'"):
        TrainConfig(task="fixture_misnamed", train=str(text)).validate()


def test_duplicate_command_names_both_plugins(plugin_manager, capsys):
    def register_commands(register):
        register("plugins", lambda args: None, description="Shadow.")

    register(plugin_manager, "shadow_plugin", register_commands=register_commands)
    assert cli.main(["plugins"]) == 2
    error = capsys.readouterr().err
    assert "Command 'plugins' is registered by two plugins" in error
    assert "'keraslm.builtins.commands' and 'shadow_plugin'" in error


def test_components_get_the_arguments_they_accept(plugin_manager):
    """A plugin loss, schedule and optimizer get what built-ins get, and an
    option that the chosen component does not take is an error."""
    from keraslm.tasks import get_task
    from keraslm.training import TrainConfig
    from keraslm.training.run import build_loss, build_optimizer

    seen = {}

    def strict_loss(ignore_class, label_smoothing=0.0):
        seen["loss"] = dict(ignore_class=ignore_class, label_smoothing=label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def total_steps_schedule(learning_rate, total_steps):
        seen["schedule"] = dict(learning_rate=learning_rate, total_steps=total_steps)
        return keras.optimizers.schedules.PolynomialDecay(learning_rate, total_steps)

    def plain_sgd(learning_rate, global_clipnorm=None):
        seen["optimizer"] = dict(global_clipnorm=global_clipnorm)
        return keras.optimizers.SGD(learning_rate, global_clipnorm=global_clipnorm)

    register(plugin_manager, "components_plugin",
             register_losses=lambda register: register("fixture_strict", strict_loss),
             register_schedules=lambda register: register("fixture_total",
                                                          total_steps_schedule),
             register_optimizers=lambda register: register("fixture_sgd", plain_sgd))
    config = TrainConfig(train="README.md", loss="fixture_strict", label_smoothing=0.1,
                         schedule="fixture_total", optimizer="fixture_sgd")
    build_loss(config, get_task(config))
    assert seen["loss"] == {"ignore_class": -100, "label_smoothing": 0.1}
    build_optimizer(config, total_steps=120)
    assert seen["schedule"] == {"learning_rate": 1e-3, "total_steps": 120}
    assert seen["optimizer"] == {"global_clipnorm": 1.0}
    with pytest.raises(registry.UnacceptedOptionError,
                       match=r"Optimizer 'fixture_sgd' .* does not take 'weight_decay'. "
                             r"Received: weight_decay=0.1"):
        build_optimizer(TrainConfig(train="README.md", schedule="fixture_total",
                                    optimizer="fixture_sgd", weight_decay=0.1), 120)
    with pytest.raises(registry.UnacceptedOptionError,
                       match="Schedule 'fixture_total' .* does not take 'warmup_steps'"):
        build_optimizer(TrainConfig(train="README.md", schedule="fixture_total",
                                    warmup_steps=10), 120)
    with pytest.raises(registry.UnacceptedOptionError,
                       match="Loss 'infonce' .* does not take 'label_smoothing'"):
        build_loss(TrainConfig(train="README.md", loss="infonce", label_smoothing=0.1),
                   get_task(config))


def test_every_hook_has_a_test_and_docs():
    module = sys.modules[__name__]
    assert plugins.HOOK_NAMES, "no hooks found in keraslm.hookspecs"
    for hook in plugins.HOOK_NAMES:
        assert callable(getattr(module, f"test_hook_{hook}", None)), (
            f"hook {hook} has no test_hook_{hook} in tests/test_hooks.py")
        doc = getattr(hookspecs, hook).__doc__ or ""
        assert "Called" in doc, f"hook {hook} does not say when it is called"
    assert "register(name, factory" in hookspecs.__doc__
