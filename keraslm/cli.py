"""The `keraslm` command line.

Sub-commands come from the `register_commands(cli)` hook, the built-in ones
(`plugins`, `quickstart`) included, so a plugin adds a command the same way:

```python
@keraslm.hookimpl
def register_commands(cli):
    def configure(parser):
        parser.add_argument("path")

    def run(args):
        print(args.path)

    cli.add_command("hello", run, help="Say hello.", configure=configure)
```
"""

import argparse
import os
import sys
import warnings

from keraslm.registry import unknown_name_message


class CommandError(ValueError):
    """A plugin registered a command keraslm cannot use."""


class CommandRegistry:
    """Collects sub-commands from the `register_commands` hook."""

    def __init__(self):
        self.commands: dict[str, dict] = {}
        self._plugin = None

    def add_command(self, name, handler, *, help, configure=None):
        """Adds `keraslm NAME`.

        Args:
            name: str. The sub-command name.
            handler: callable. `handler(args)` runs the command with the parsed
                `argparse.Namespace` and returns an exit status (None means 0).
            help: str. One line shown by `keraslm --help`.
            configure: callable, optional. `configure(parser)` adds arguments.
        """
        if not isinstance(name, str) or not name or not name.replace("-", "").isalnum():
            raise CommandError(
                f"Plugin '{self._plugin}' registered a command with an invalid "
                f"name. Received: name={name!r}. Expected letters, digits and '-'."
            )
        if not callable(handler):
            raise CommandError(
                f"Plugin '{self._plugin}' registered command '{name}' with a "
                f"handler that is not callable. Received: {handler!r}."
            )
        if name in self.commands:
            raise CommandError(
                f"Command '{name}' is registered by two plugins: "
                f"'{self.commands[name]['plugin']}' and '{self._plugin}'."
            )
        self.commands[name] = {"handler": handler, "help": help,
                               "configure": configure, "plugin": self._plugin}


def collect_commands(pm) -> CommandRegistry:
    """Calls `register_commands` on every plugin, attributing each command."""
    from keraslm import plugins

    cli = CommandRegistry()
    for plugin_name, call in plugins.iter_hook_impls(pm, "register_commands"):
        cli._plugin = plugin_name
        try:
            call(cli=cli)
        except CommandError:
            raise
        except Exception as error:
            message = (f"Plugin '{plugin_name}' failed in hook register_commands: "
                       f"{type(error).__name__}: {error}")
            if plugins.strict_mode():
                raise plugins.PluginError(message) from error
            warnings.warn(message, plugins.PluginLoadWarning, stacklevel=2)
    return cli


def build_parser(pm) -> argparse.ArgumentParser:
    from keraslm import __version__

    parser = argparse.ArgumentParser(
        prog="keraslm",
        description="Build, train and ship Keras language models.",
    )
    parser.add_argument("--version", action="version",
                        version=f"keraslm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in sorted(collect_commands(pm).commands.items()):
        sub = subparsers.add_parser(name, help=command["help"],
                                    description=command["help"])
        if command["configure"] is not None:
            command["configure"](sub)
        sub.set_defaults(_handler=command["handler"])
    return parser


def main(argv=None) -> int:
    """Runs the `keraslm` command line and returns its exit status."""
    from keraslm import plugins

    # TensorFlow's C++ start-up chatter hides our output; users can override.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        pm = plugins.get_plugin_manager()
        parser = build_parser(pm)
    except (plugins.PluginError, CommandError) as error:
        print(f"keraslm: error: {error}", file=sys.stderr)
        return 2
    if argv and not argv[0].startswith("-"):
        choices = parser._subparsers._group_actions[0].choices
        if argv[0] not in choices:
            print(f"keraslm: error: {unknown_name_message('command', argv[0], choices)}",
                  file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    if getattr(args, "_handler", None) is None:
        parser.print_help()
        return 0
    try:
        status = args._handler(args)
    except KeyboardInterrupt:
        print("keraslm: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, plugins.PluginError) as error:
        if os.environ.get("KERASLM_DEBUG"):
            raise
        print(f"keraslm {args.command}: error: {error}\n"
              f"(set KERASLM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
