"""`keraslm plugins [--all] [--json]`: the installed plugins and what they add.

The report never raises on a broken registry: duplicate names and plugins
that failed to load are listed with their errors, so the command works when
nothing else does. A duplicate name is printed first, on stderr, and makes
the command exit 1; a plugin that failed to load does so in strict mode
(`KERASLM_STRICT_PLUGINS=1`).

Example:

```python
from keraslm.commands.plugins import describe_plugins

report = describe_plugins(include_builtins=True)
[row["name"] for row in report["plugins"]]
```
"""

import dataclasses
import json
import sys

from keraslm import plugins, registry


def describe_plugins(include_builtins: bool = False) -> dict:
    """Everything `keraslm plugins` shows, without raising on a broken registry.

    Returns:
        A dict with `plugins` (as `list_plugins`), `failures` (plugins found
        but not loaded: name, distribution, version, error) and `errors`
        (registry errors such as duplicate names, as strings).
    """
    errors = []
    components = {}
    for family, reg in registry.ALL.items():
        try:
            components[family] = list(reg)
        except (registry.RegistryError, plugins.PluginError) as error:
            errors.append(str(error))
    return {
        "plugins": _describe(include_builtins, components),
        "failures": [dataclasses.asdict(f) for f in plugins.plugin_failures()],
        "errors": errors,
    }


def list_plugins(include_builtins: bool = False) -> list[dict]:
    """Describes the registered plugins.

    Args:
        include_builtins: bool. Include keraslm's internal plugins. Defaults
            to `False` (external plugins only).

    Returns:
        A list of dicts with `name`, `version`, `distribution`, `module`,
        `builtin`, `hooks` (the hooks it implements) and `components`
        (family -> names it registered: `tasks`, `losses`, `commands`, ...).

    Example:

    ```python
    [p["name"] for p in keraslm.list_plugins()]
    ```
    """
    components = {family: list(reg) for family, reg in registry.ALL.items()}
    return _describe(include_builtins, components)


def _describe(include_builtins, components) -> list[dict]:
    pm = plugins.get_plugin_manager()
    infos = plugins.plugin_infos()
    by_plugin: dict[str, dict[str, list[str]]] = {}
    for family, family_components in components.items():
        for component in family_components:
            by_plugin.setdefault(component.plugin, {}).setdefault(
                family, []).append(component.name)
    result = []
    for name, plugin in pm.list_name_plugin():
        info = infos.get(name) or plugins.PluginInfo(
            name=name, module=getattr(plugin, "__name__", repr(plugin)),
            version=None, distribution=None, builtin=False,
        )
        if info.builtin and not include_builtins:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        result.append({
            "name": name,
            "version": info.version,
            "distribution": info.distribution,
            "module": info.module,
            "builtin": info.builtin,
            "hooks": hooks,
            "components": {k: sorted(v) for k, v in
                           sorted(by_plugin.get(name, {}).items())},
        })
    return result


def configure(parser):
    parser.add_argument("--all", action="store_true",
                        help="include keraslm's built-in plugins")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of a table")


def run(args):
    from keraslm import plugins

    report = describe_plugins(include_builtins=args.all)
    # A name collision makes its whole family unusable (every command that
    # looks it up fails): an error in any mode. A plugin that failed to load
    # is skipped, so it fails the command only in strict mode.
    status = 1 if report["errors"] or (plugins.strict_mode() and report["failures"]) else 0
    if args.json:
        print(json.dumps(report, indent=2))
        return status
    for error in report["errors"]:
        print(f"keraslm plugins: error: {error} Until this is fixed, every command "
              f"that uses these components fails, and they are not listed below.",
              file=sys.stderr)
    rows = report["plugins"]
    if not rows:
        print("No external plugins installed (use --all to list built-ins).")
    for row in rows:
        origin = "built-in" if row["builtin"] else row["distribution"]
        print(f"{row['name']} {row['version'] or ''} ({origin})")
        print(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for family, names in row["components"].items():
            print(f"  {family}: {', '.join(names)}")
    for failure in report["failures"]:
        print(f"FAILED {failure['name']}: {failure['error']}")
    return status
