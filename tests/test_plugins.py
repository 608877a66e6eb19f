"""The plugin manager with real pip-installed plugin distributions."""

import importlib.metadata
import json

import pytest

import keraslm
from keraslm import cli
from keraslm import plugins, registry

from plugin_fixtures import build_and_install, plugins_json, run_keraslm


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return build_and_install(str(tmp_path_factory.mktemp("plugins")))


def by_name(report):
    return {row["name"]: row for row in report["plugins"]}


def test_installed_plugin_is_found_by_entry_point_and_listed(site):
    report = plugins_json(run_keraslm(site, "plugins", "--json", load="kl_good"))
    good = by_name(report)["kl_good"]
    assert good["distribution"] == "kl-good"
    assert good["version"] == "1.2.3"
    assert good["hooks"] == ["register_commands", "register_losses"]
    assert good["components"] == {"commands": ["hello"], "losses": ["fixture_hinge"]}
    assert report["failures"] == []
    # Built-ins are hidden without --all.
    assert not any(row["builtin"] for row in report["plugins"])


def test_plugin_command_runs(site):
    result = run_keraslm(site, "hello", "world", load="kl_good")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello world from kl_good"


def test_all_lists_builtins_with_their_components(site):
    report = plugins_json(run_keraslm(site, "plugins", "--all", "--json", load=""))
    rows = by_name(report)
    assert set(plugins.BUILTIN_PLUGINS) <= set(rows)
    losses = rows["keraslm.builtins.losses"]
    assert losses["builtin"] and losses["distribution"] == "keraslm"
    assert "masked_sparse_categorical_crossentropy" in losses["components"]["losses"]
    assert "saved_model" in rows["keraslm.builtins.exporters"]["components"]["exporters"]


def test_broken_plugin_is_reported_and_skipped(site):
    result = run_keraslm(site, "plugins", "--json", load="kl_broken,kl_good")
    report = plugins_json(result)
    assert "kl_good" in by_name(report)  # the host keeps working
    assert "kl_broken" not in by_name(report)
    [failure] = report["failures"]
    assert failure["name"] == "kl_broken"
    assert failure["distribution"] == "kl-broken"
    assert "RuntimeError: kl_broken cannot start: missing configuration" in failure["error"]
    assert "keraslm plugin 'kl_broken' was not loaded" in result.stderr


def test_broken_plugin_stops_strict_mode(site):
    result = run_keraslm(site, "plugins", load="kl_broken,kl_good", strict=True)
    assert result.returncode == 2
    assert "kl_broken" in result.stderr
    assert "missing configuration" in result.stderr


def test_misspelled_hook_is_rejected_with_suggestion(site):
    result = run_keraslm(site, "plugins", "--json", load="kl_misspelled")
    report = plugins_json(result)
    assert "kl_misspelled" not in by_name(report)
    [failure] = report["failures"]
    assert "unknown hook 'register_lossess'" in failure["error"]
    assert "did you mean 'register_losses'?" in failure["error"]
    strict = run_keraslm(site, "plugins", load="kl_misspelled", strict=True)
    assert strict.returncode == 2
    assert "register_lossess" in strict.stderr


def test_misspelled_hook_registered_directly_is_an_error(plugin_manager):
    class Misspelled:
        @keraslm.hookimpl
        def register_metric(self, register):
            pass

    plugin_manager.register(Misspelled(), name="misspelled")
    with pytest.raises(plugins.PluginError, match="did you mean 'register_metrics'"):
        registry.metrics.names()


def test_duplicate_name_names_both_plugins(site):
    result = run_keraslm(site, "plugins", "--json", load="kl_duplicate")
    assert result.returncode == 1  # a collision is an error, strict mode or not
    [error] = json.loads(result.stdout)["errors"]
    assert "'masked_sparse_categorical_crossentropy'" in error
    assert "'keraslm.builtins.losses'" in error and "'kl_duplicate'" in error


def test_a_collision_with_a_builtin_is_shown_without_json(plugin_manager, capsys):
    class Shadow:
        @keraslm.hookimpl
        def register_losses(self, register):
            register("focal", lambda **kw: None)

    plugin_manager.register(Shadow(), name="shadow_losses")
    try:
        assert cli.main(["plugins"]) == 1  # not only in strict mode
        captured = capsys.readouterr()
        assert captured.err.startswith(
            "keraslm plugins: error: Loss 'focal' is registered by two plugins: "
            "'keraslm.builtins.losses' and 'shadow_losses'.")
        assert "Traceback" not in captured.err
    finally:
        plugin_manager.unregister(name="shadow_losses")
    assert cli.main(["plugins"]) == 0


def test_duplicate_name_in_process(plugin_manager):
    class Dupe:
        @keraslm.hookimpl
        def register_optimizers(self, register):
            register("adam", lambda **kw: None)

    plugin_manager.register(Dupe(), name="dupe_plugin")
    with pytest.raises(registry.DuplicateComponentError) as info:
        registry.optimizers.get("adam")
    assert "'keraslm.builtins.optimizers' and 'dupe_plugin'" in str(info.value)
    plugin_manager.unregister(name="dupe_plugin")
    assert registry.optimizers.get("adam").plugin == "keraslm.builtins.optimizers"


def test_load_and_disable_select_plugins(site):
    loaded = by_name(plugins_json(run_keraslm(site, "plugins", "--json", load="kl-good")))
    assert "kl_good" in loaded and "onnx" not in loaded
    none = plugins_json(run_keraslm(site, "plugins", "--json", load=""))
    assert none["plugins"] == [] and none["failures"] == []
    disabled = by_name(plugins_json(run_keraslm(
        site, "plugins", "--json", disable="kl_broken,kl_misspelled,kl_duplicate")))
    assert "kl_good" in disabled
    assert not {"kl_broken", "kl_misspelled", "kl_duplicate"} & set(disabled)


def test_load_names_an_uninstalled_plugin(site):
    report = plugins_json(run_keraslm(site, "plugins", "--json", load="kl_gooood"))
    [failure] = report["failures"]
    assert failure["name"] == "kl_gooood"
    assert "no installed distribution" in failure["error"]
    assert "kl_good" in failure["error"]


def test_unknown_name_suggests_closest():
    with pytest.raises(registry.UnknownComponentError) as info:
        registry.optimizers.get("adamm")
    message = str(info.value)
    assert message.startswith("Unknown optimizer 'adamm'. Available: adam, adamw, sgd")
    assert message.endswith("Did you mean 'adam'?")
    with pytest.raises(registry.UnknownComponentError, match="Available: .*saved_model"):
        registry.exporters.get("tensorrt")


def test_unknown_command_suggests_closest(site):
    result = run_keraslm(site, "plugin", load="")
    assert result.returncode == 2
    assert "Unknown command 'plugin'" in result.stderr
    assert "Did you mean 'plugins'?" in result.stderr


@pytest.mark.parametrize("name, factory, expected", [
    ("Bad Name", lambda: None, "invalid name. Received: name='Bad Name'"),
    ("ok_name", 42, "neither callable nor an import string. Received: factory=42"),
    ("ok_name", "no colon here", "neither callable nor an import string"),
])
def test_invalid_registration_is_explained(plugin_manager, name, factory, expected):
    class Bad:
        @keraslm.hookimpl
        def register_metrics(self, register):
            register(name, factory)

    plugin_manager.register(Bad(), name="bad_plugin")
    with pytest.raises(registry.InvalidComponentError) as info:
        registry.metrics.names()
    assert "Plugin 'bad_plugin'" in str(info.value)
    assert expected in str(info.value)


def test_import_string_that_does_not_resolve(plugin_manager):
    class Lazy:
        @keraslm.hookimpl
        def register_metrics(self, register):
            register("missing_metric", "keraslm.no_such_module:Metric")

    plugin_manager.register(Lazy(), name="lazy_plugin")
    with pytest.raises(registry.InvalidComponentError,
                       match="'keraslm.no_such_module:Metric', which cannot be imported"):
        registry.metrics.build("missing_metric")


def test_hook_that_raises_is_skipped_unless_strict(plugin_manager, monkeypatch):
    class Raising:
        @keraslm.hookimpl
        def register_schedules(self, register):
            raise KeyError("boom")

    plugin_manager.register(Raising(), name="raising_plugin")
    monkeypatch.setenv("KERASLM_STRICT_PLUGINS", "0")
    with pytest.warns(plugins.PluginLoadWarning, match="raising_plugin.*KeyError"):
        names = registry.schedules.names()
    assert "warmup_cosine" in names
    monkeypatch.setenv("KERASLM_STRICT_PLUGINS", "1")
    plugin_manager.unregister(name="raising_plugin")
    plugin_manager.register(Raising(), name="raising_plugin")
    with pytest.raises(plugins.PluginError, match="raising_plugin"):
        registry.schedules.names()


def test_keraslm_onnx_is_a_pip_installed_entry_point():
    entry_points = {ep.name: ep for ep in importlib.metadata.entry_points(group="keraslm")}
    assert entry_points["onnx"].dist.name == "keraslm-onnx"
    assert registry.exporters.get("onnx").plugin == "onnx"


def test_same_plugin_registering_a_name_twice(plugin_manager):
    class Twice:
        @keraslm.hookimpl
        def register_losses(self, register):
            register("twice", lambda: None)
            register("twice", lambda: None)

    plugin_manager.register(Twice(), name="twice_plugin")
    with pytest.raises(registry.DuplicateComponentError,
                       match="'twice' is registered twice by plugin 'twice_plugin'"):
        registry.losses.names()


def test_task_plugin_is_listed_trained_and_evaluated_from_the_command_line(site, tmp_path):
    """A pip-installed task (entry point, its own option) trains and evaluates
    through `keraslm train --task`: no line of the core names it."""
    import csv

    import shared_data

    report = plugins_json(run_keraslm(site, "plugins", "--json", load="kl_task"))
    assert by_name(report)["kl_task"]["components"] == {"tasks": ["fixture_long_reviews"]}
    help_text = run_keraslm(site, "train", "--help", load="kl_task")
    assert "--minimum-words" in help_text.stdout
    assert "reviews with fewer words are left out" in help_text.stdout

    rows = {}
    for split, count in (("train", 600), ("test", 200)):
        with open(shared_data.path("reviews", f"{split}.csv"), newline="",
                  encoding="utf-8") as handle:
            rows[split] = list(csv.DictReader(handle))[:count]
        with open(tmp_path / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows[split])
    long_reviews = sum(len(r["text"].split()) >= 40 for r in rows["test"])
    assert 0 < long_reviews < len(rows["test"])
    run_dir = tmp_path / "run"
    trained = run_keraslm(
        site, "train", "--task", "fixture_long_reviews", "--minimum-words", "40",
        "--train", str(tmp_path / "train.csv"), "--valid", str(tmp_path / "test.csv"),
        "--tokenizer", "word", "--vocabulary-size", "600", "--sequence-length", "32",
        "--steps", "6",
        "--checkpoint-every", "6", "--num-layers", "1", "--hidden-dim", "16",
        "--num-heads", "2", "--intermediate-dim", "32", "--quiet", "-o", str(run_dir),
        load="kl_task", strict=True)
    assert trained.returncode == 0, trained.stderr[-3000:]
    import json

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["final"]["examples"] == long_reviews  # the option reached the task
    assert json.loads((run_dir / "config.json").read_text())["config"]["task_options"] == {
        "minimum_words": 40}
    evaluated = run_keraslm(site, "evaluate", str(run_dir), "--json", load="kl_task",
                            strict=True)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout)["accuracy"] == metrics["final"]["accuracy"]
    # Without the plugin, its runs and its task are unknown, with what is installed.
    missing = run_keraslm(site, "evaluate", str(run_dir), load="")
    assert missing.returncode == 1
    assert "Unknown task 'fixture_long_reviews'. Available: classify, lm" in missing.stderr


def test_disabled_qa_plugin_makes_qa_an_unknown_task_before_any_work(tmp_path):
    """`--task qa` without the plugin fails at once, listing the installed tasks."""
    import os
    import subprocess
    import sys

    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "q?", "context": "a b c", "answer": "b"}\n')
    env = dict(os.environ, KERASLM_DISABLE_PLUGINS="qa")
    result = subprocess.run(
        [sys.executable, "-m", "keraslm", "train", "--task", "qa", "--train", str(data),
         "-o", str(tmp_path / "run")], env=env, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1
    available = result.stderr.split("Unknown task 'qa'. Available: ")[1].split(".")[0]
    assert set(available.split(", ")) >= {"classify", "lm", "mlm", "tag", "translate"}
    assert "qa" not in available.split(", ")
    assert not (tmp_path / "run").exists()  # nothing was written
    typo = subprocess.run(
        [sys.executable, "-m", "keraslm", "train", "--task", "clasify", "--train", str(data)],
        capture_output=True, text=True, timeout=300)
    assert "Did you mean 'classify'?" in typo.stderr
