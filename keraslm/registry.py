"""Name -> component registries, built lazily from the plugin hooks.

Each component family has one registry object in this module:

```python
import keraslm

keraslm.registry.losses.names()          # ['masked_sparse_categorical_crossentropy', ...]
loss = keraslm.registry.losses.build("masked_sparse_categorical_crossentropy")
keraslm.registry.losses.get("focall")    # UnknownComponentError: ... Did you mean 'focal'?
```

A registry is (re)built from its hook the first time it is used after the set
of registered plugins changed, so `pm.register(...)` / `pm.unregister(...)`
take effect on the next lookup without any cache to clear.
"""

import dataclasses
import importlib
import inspect
import re
import warnings
from typing import Any, Callable, Iterator

from keraslm._names import suggest, unknown_name_message

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class RegistryError(ValueError):
    """Base class for registry errors."""


class UnknownComponentError(RegistryError, LookupError):
    """A name that no plugin registered was looked up."""


class DuplicateComponentError(RegistryError):
    """Two plugins registered the same name in one family."""


class InvalidComponentError(RegistryError):
    """A plugin called `register` with arguments keraslm cannot use."""


class UnacceptedOptionError(RegistryError):
    """An option was set that the chosen component does not take."""


@dataclasses.dataclass(frozen=True)
class Component:
    """One registered component.

    Attributes:
        name: str. The public name.
        family: str. The registry it belongs to (`"loss"`, `"exporter"`, ...).
        plugin: str. The name of the plugin that registered it.
        factory: a callable, or an import string `"package.module:attribute"`
            resolved on first use by `load()`.
        description: str or None. One line for listings.
        metadata: dict. Extra keyword arguments given to `register`.
    """

    name: str
    family: str
    plugin: str
    factory: Any
    description: str | None = None
    metadata: dict = dataclasses.field(default_factory=dict)

    def load(self) -> Callable:
        """Returns the factory, importing it first if it is an import string."""
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            target = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as error:
            raise InvalidComponentError(
                f"{self.family.capitalize()} '{self.name}' from plugin "
                f"'{self.plugin}' points to '{self.factory}', which cannot be "
                f"imported: {type(error).__name__}: {error}"
            ) from error
        if not callable(target):
            raise InvalidComponentError(
                f"{self.family.capitalize()} '{self.name}' from plugin "
                f"'{self.plugin}' points to '{self.factory}', which is not "
                f"callable (got {type(target).__name__})."
            )
        return target

    def build(self, **kwargs):
        """Calls the factory with `kwargs` and returns the component."""
        return self.load()(**kwargs)

    def accepts(self) -> frozenset | None:
        """The keyword arguments the factory takes, or None for any.

        The `accepts=` metadata given to `register` wins; otherwise the
        factory's signature decides (a `**kwargs` parameter accepts any).
        """
        declared = self.metadata.get("accepts")
        if declared is not None:
            return frozenset(declared)
        return _accepted_keywords(self.load())

    def build_with(self, given=None, offered=None):
        """Builds the component from what it accepts.

        Args:
            given: dict. Arguments that must reach the component (what the
                user set): one it does not accept is an
                `UnacceptedOptionError` naming it and what it accepts.
            offered: dict. Arguments passed only if the component accepts
                them (what the trainer knows: `ignore_class`, `total_steps`).

        Example:

        ```python
        loss = keraslm.registry.losses.get("focal").build_with(
            given={"gamma": 1.0}, offered={"ignore_class": -100})
        ```
        """
        given, offered = dict(given or {}), dict(offered or {})
        accepted = self.accepts()
        if accepted is not None:
            refused = sorted(set(given) - accepted)
            if refused:
                raise UnacceptedOptionError(
                    f"{self.family.capitalize()} '{self.name}' (plugin "
                    f"'{self.plugin}') does not take {', '.join(map(repr, refused))}. "
                    f"Received: {', '.join(f'{k}={given[k]!r}' for k in refused)}. "
                    f"It accepts: {', '.join(sorted(accepted)) or 'no arguments'}.")
            offered = {k: v for k, v in offered.items() if k in accepted}
        return self.build(**{**offered, **given})


_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _accepted_keywords(factory):
    """The keyword arguments `factory` takes, or None for any.

    A class whose `__init__` passes `**kwargs` on to its base (a Keras
    `Loss` subclass taking `name`, `reduction`, ...) accepts its own named
    parameters and those of the bases it forwards to, up to the first
    `__init__` without `**kwargs` (or Keras' optimizer base, which refuses
    unknown keywords itself). A function with `**kwargs` accepts any, unless
    it names where they go in a `forwards_kwargs_to` attribute (`sgd`
    forwards to `keras.optimizers.SGD`).
    """
    if not isinstance(factory, type):
        try:
            parameters = inspect.signature(factory).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature
            return None
        names = frozenset(p.name for p in parameters if p.kind in _NAMED)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            target = getattr(factory, "forwards_kwargs_to", None)
            further = _accepted_keywords(target) if target is not None else None
            return None if further is None else names | further
        return names
    import keras

    checked = keras.optimizers.Optimizer.__mro__[1:]  # BaseOptimizer: raises on unknown
    names = set()
    for cls in factory.__mro__:
        if "__init__" not in vars(cls):
            continue
        if cls is object:
            return None  # **kwargs all the way up: nothing says what is refused
        try:
            parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        names.update(p.name for p in parameters if p.kind in _NAMED)
        if (cls in checked and cls is not object) or not any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return frozenset(names)
    return None


class Registry:
    """The components of one family, collected from one hook.

    Args:
        family: str. Singular name used in messages (`"loss"`).
        hook: str. The hook that collects the family (`"register_losses"`).
    """

    def __init__(self, family: str, hook: str):
        self.family = family
        self.hook = hook
        self._snapshot = None
        self._components: dict[str, Component] = {}

    def __repr__(self):
        return f"<Registry {self.hook}: {len(self)} components>"

    def _plugin_manager(self):
        from keraslm import plugins

        return plugins.get_plugin_manager()

    def _collect(self) -> dict[str, Component]:
        from keraslm import plugins

        pm = self._plugin_manager()
        snapshot = plugins.registration_snapshot(pm)
        if snapshot == self._snapshot:
            return self._components
        plugins.check_hooks(pm)
        components: dict[str, Component] = {}
        for plugin_name, register_hook in plugins.iter_hook_impls(pm, self.hook):
            staged: list[Component] = []

            def register(name, factory, *, description=None, _plugin=plugin_name,
                         _staged=staged, **metadata):
                _staged.append(
                    self._validate(name, factory, description, metadata, _plugin)
                )

            try:
                register_hook(register=register)
            except RegistryError:
                raise
            except Exception as error:  # a broken plugin must not stop the host
                message = (
                    f"Plugin '{plugin_name}' failed in hook {self.hook}: "
                    f"{type(error).__name__}: {error}"
                )
                if plugins.strict_mode():
                    raise plugins.PluginError(message) from error
                warnings.warn(message + " Its components are skipped.",
                              plugins.PluginLoadWarning, stacklevel=2)
                continue
            for component in staged:
                previous = components.get(component.name)
                if previous is not None and previous.plugin == component.plugin:
                    raise DuplicateComponentError(
                        f"{self.family.capitalize()} '{component.name}' is "
                        f"registered twice by plugin '{component.plugin}'."
                    )
                if previous is not None:
                    raise DuplicateComponentError(
                        f"{self.family.capitalize()} '{component.name}' is "
                        f"registered by two plugins: '{previous.plugin}' and "
                        f"'{component.plugin}'. Rename one, or disable one with "
                        f"KERASLM_DISABLE_PLUGINS."
                    )
                components[component.name] = component
        self._components = components
        self._snapshot = snapshot
        return components

    def _validate(self, name, factory, description, metadata, plugin) -> Component:
        where = f"Plugin '{plugin}' (hook {self.hook})"
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise InvalidComponentError(
                f"{where} registered a {self.family} with an invalid name. "
                f"Received: name={name!r}. Expected a lower-case string of "
                f"letters, digits, '_', '-' or '.', such as 'focal_loss'."
            )
        if not (callable(factory) or (isinstance(factory, str)
                                      and _IMPORT_STRING.match(factory))):
            raise InvalidComponentError(
                f"{where} registered {self.family} '{name}' with a factory that "
                f"is neither callable nor an import string. Received: "
                f"factory={factory!r}. Expected a class or function, or "
                f"'package.module:attribute'."
            )
        if description is not None and not isinstance(description, str):
            raise InvalidComponentError(
                f"{where} registered {self.family} '{name}' with a non-string "
                f"description. Received: description={description!r}."
            )
        return Component(name=name, family=self.family, plugin=plugin,
                         factory=factory, description=description,
                         metadata=dict(metadata))

    def get(self, name: str) -> Component:
        """Returns the `Component` registered as `name`.

        Raises:
            UnknownComponentError: no plugin registered `name`; the message
                lists what exists and suggests the closest name.
        """
        components = self._collect()
        if name not in components:
            raise UnknownComponentError(
                unknown_name_message(self.family, name, components)
            )
        return components[name]

    def build(self, name: str, **kwargs):
        """Builds the component registered as `name` from `kwargs`."""
        return self.get(name).build(**kwargs)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._collect())

    def __contains__(self, name) -> bool:
        return name in self._collect()

    def __iter__(self) -> Iterator[Component]:
        return iter(list(self._collect().values()))

    def __len__(self) -> int:
        return len(self._collect())


tasks = Registry("task", "register_tasks")
task_heads = Registry("task head", "register_task_heads")
losses = Registry("loss", "register_losses")
optimizers = Registry("optimizer", "register_optimizers")
schedules = Registry("schedule", "register_schedules")
exporters = Registry("exporter", "register_exporters")
tokenizers = Registry("tokenizer", "register_tokenizers")
metrics = Registry("metric", "register_metrics")
commands = Registry("command", "register_commands")

ALL = {
    "tasks": tasks,
    "task_heads": task_heads,
    "losses": losses,
    "optimizers": optimizers,
    "schedules": schedules,
    "exporters": exporters,
    "tokenizers": tokenizers,
    "metrics": metrics,
    "commands": commands,
}
"""Every component registry, keyed by family (plural)."""
