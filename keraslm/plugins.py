"""The keraslm plugin manager: built-ins, entry points, isolation, failures.

Plugins are loaded once per process, on first use:

1. the built-in plugins (`keraslm.builtins.*`), registered through the same
   hooks as everything else;
2. every entry point in the `keraslm` group, one at a time. A plugin that
   fails to import, to register, or that implements a hook keraslm does not
   have (a misspelled hook) is reported by name with its error and skipped:
   the host keeps working. `KERASLM_STRICT_PLUGINS=1` turns that into an
   error instead.

Environment variables:

- `KERASLM_LOAD_PLUGINS=a,b`: load only these external plugins (entry point or
  distribution names); an empty value loads none.
- `KERASLM_DISABLE_PLUGINS=a,b`: never load these external plugins.
- `KERASLM_STRICT_PLUGINS=1`: a broken plugin raises `PluginError`.

Example:

```python
import keraslm

pm = keraslm.load_plugins()
[name for name, _ in pm.list_name_plugin()]
```

It imports only the hook specifications and the name helper: the registries
(`keraslm.registry`) use it, and the `keraslm plugins` report lives with its
command (`keraslm.commands.plugins`).
"""

import dataclasses
import importlib
import importlib.metadata
import os
import threading
import warnings

import pluggy

from keraslm import hookspecs
from keraslm._names import suggest

ENTRY_POINT_GROUP = "keraslm"

BUILTIN_PLUGINS = (
    "keraslm.builtins.tasks",
    "keraslm.builtins.task_heads",
    "keraslm.builtins.losses",
    "keraslm.builtins.optimizers",
    "keraslm.builtins.schedules",
    "keraslm.builtins.exporters",
    "keraslm.builtins.tokenizers",
    "keraslm.builtins.metrics",
    "keraslm.builtins.commands",
)
"""Modules registered as internal plugins, in this order."""

HOOK_NAMES = tuple(
    name for name in dir(hookspecs)
    if name.startswith("register_") and callable(getattr(hookspecs, name))
)


class PluginError(RuntimeError):
    """A plugin could not be loaded or used (strict mode, or a bad request)."""


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded and was skipped."""


@dataclasses.dataclass
class PluginInfo:
    """What keraslm knows about one registered plugin."""

    name: str
    module: str
    version: str | None
    distribution: str | None
    builtin: bool


@dataclasses.dataclass
class PluginFailure:
    """A plugin that was found but not loaded, and why."""

    name: str
    distribution: str | None
    version: str | None
    error: str


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_failures: list[PluginFailure] = []


def _env_list(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {_normalize(item) for item in value.split(",") if item.strip()}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def strict_mode() -> bool:
    """Whether `KERASLM_STRICT_PLUGINS` asks for broken plugins to raise."""
    value = os.environ.get("KERASLM_STRICT_PLUGINS", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def _keraslm_version() -> str:
    try:
        return importlib.metadata.version("keraslm")
    except importlib.metadata.PackageNotFoundError:
        from keraslm import __version__

        return __version__


class _Snapshot(tuple):
    """The registered `(name, plugin)` pairs, compared by plugin identity.

    It holds the plugin objects themselves, so an unregistered plugin cannot
    be freed and its `id` reused by a new one while a registry caches it.
    """

    def __eq__(self, other):
        return (isinstance(other, tuple) and len(self) == len(other) and all(
            a[0] == b[0] and a[1] is b[1] for a, b in zip(self, other)))

    __hash__ = tuple.__hash__


def registration_snapshot(pm: pluggy.PluginManager) -> tuple:
    """A value that changes whenever a plugin is registered or unregistered."""
    return _Snapshot(pm.list_name_plugin())


def iter_hook_impls(pm: pluggy.PluginManager, hook: str):
    """Yields `(plugin_name, call)` for each implementation of `hook`.

    Implementations are visited in registration order (built-ins first), so
    each component is attributed to the plugin that registered it. `call`
    takes the hook's arguments as keywords and passes on those the
    implementation declares.
    """
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        def call(_impl=impl, **kwargs):
            return _impl.function(*(kwargs[name] for name in _impl.argnames))

        yield impl.plugin_name, call


def unknown_hooks(pm: pluggy.PluginManager, plugin) -> list[str]:
    """Hook names that `plugin` implements but keraslm does not define."""
    names = []
    for caller in pm.get_hookcallers(plugin) or []:
        if not caller.has_spec():
            names.append(caller.name)
    return names


def _unknown_hook_message(plugin_name: str, names: list[str]) -> str:
    parts = []
    for name in names:
        part = f"'{name}'"
        closest = suggest(name, HOOK_NAMES)
        if closest:
            part += f" (did you mean '{closest}'?)"
        parts.append(part)
    return (
        f"Plugin '{plugin_name}' implements unknown hook {', '.join(parts)}. "
        f"keraslm hooks are: {', '.join(HOOK_NAMES)}."
    )


def check_hooks(pm: pluggy.PluginManager) -> None:
    """Raises `PluginError` if any registered plugin implements an unknown hook.

    This is `pm.check_pending()` with a message that names the plugin and
    suggests the closest hook.
    """
    for name, plugin in pm.list_name_plugin():
        unknown = unknown_hooks(pm, plugin)
        if unknown:
            raise PluginError(_unknown_hook_message(name, unknown))
    pm.check_pending()


def _report(failure: PluginFailure, error: BaseException | None = None):
    _failures.append(failure)
    message = f"keraslm plugin '{failure.name}' was not loaded: {failure.error}"
    if strict_mode():
        raise PluginError(message) from error
    warnings.warn(message, PluginLoadWarning, stacklevel=3)


def _register_builtins(pm: pluggy.PluginManager) -> None:
    version = _keraslm_version()
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        _infos[module_name] = PluginInfo(
            name=module_name, module=module_name, version=version,
            distribution="keraslm", builtin=True,
        )


def _entry_points():
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    only = _env_list("KERASLM_LOAD_PLUGINS")
    disabled = _env_list("KERASLM_DISABLE_PLUGINS") or set()
    entry_points = _entry_points()
    seen = set()
    for entry_point in entry_points:
        distribution = entry_point.dist.name if entry_point.dist else None
        version = entry_point.dist.version if entry_point.dist else None
        keys = {_normalize(entry_point.name)}
        if distribution:
            keys.add(_normalize(distribution))
        seen |= keys
        if only is not None and not keys & only:
            continue
        if keys & disabled:
            continue
        failure = PluginFailure(name=entry_point.name, distribution=distribution,
                                version=version, error="")
        if pm.has_plugin(entry_point.name):
            failure.error = (
                f"another plugin is already registered under the name "
                f"'{entry_point.name}' (entry point {entry_point.value})"
            )
            _report(failure)
            continue
        try:
            module = entry_point.load()
        except Exception as error:
            failure.error = (
                f"importing {entry_point.value} raised "
                f"{type(error).__name__}: {error}"
            )
            _report(failure, error)
            continue
        try:
            pm.register(module, name=entry_point.name)
        except Exception as error:
            failure.error = f"registering failed: {type(error).__name__}: {error}"
            _report(failure, error)
            continue
        unknown = unknown_hooks(pm, module)
        if unknown:
            pm.unregister(module)
            failure.error = _unknown_hook_message(entry_point.name, unknown)
            _report(failure)
            continue
        _infos[entry_point.name] = PluginInfo(
            name=entry_point.name, module=entry_point.value, version=version,
            distribution=distribution, builtin=False,
        )
    if only:
        for name in sorted(only - seen):
            _report(PluginFailure(
                name=name, distribution=None, version=None,
                error=(
                    "KERASLM_LOAD_PLUGINS names it, but no installed "
                    "distribution has a 'keraslm' entry point of that name. "
                    "Installed: "
                    + (", ".join(sorted(ep.name for ep in entry_points)) or "none")
                ),
            ))


def load_plugins(reload: bool = False) -> pluggy.PluginManager:
    """Loads the built-in and installed plugins once and returns the manager.

    Args:
        reload: bool. Forget the current manager and load everything again
            (re-reading the environment variables). Defaults to `False`.

    Returns:
        The `pluggy.PluginManager` of this process.

    Example:

    ```python
    pm = keraslm.load_plugins()
    pm.list_name_plugin()
    ```
    """
    global _pm
    with _lock:
        if _pm is not None and not reload:
            return _pm
        _infos.clear()
        _failures.clear()
        pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        _register_builtins(pm)
        _pm = pm  # visible before entry points load, so plugins may look it up
        try:
            _load_entry_points(pm)
            check_hooks(pm)
        except BaseException:
            _pm = None
            raise
        return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """Returns the plugin manager, loading plugins on first use."""
    return load_plugins()


def plugin_failures() -> list[PluginFailure]:
    """Plugins that were found but skipped in the last load, with the reason."""
    get_plugin_manager()
    return list(_failures)


def plugin_infos() -> dict[str, PluginInfo]:
    """What is known about each registered plugin (name -> `PluginInfo`)."""
    get_plugin_manager()
    return dict(_infos)
