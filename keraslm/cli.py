"""The `keraslm` command line: assembles the parser from the command registry.

Sub-commands come from the `register_commands(register)` hook, the built-in
ones (`train`, `evaluate`, `generate`, `export`, `plot`, `plugins`,
`tokenizer`, `quickstart`, implemented in `keraslm.commands`) included, so a
plugin adds a command the same way:

```python
@keraslm.hookimpl
def register_commands(register):
    def configure(parser):
        parser.add_argument("path")

    def run(args):
        print(args.path)

    register("hello", run, description="Say hello.", configure=configure)
```
"""

import argparse
import os
import sys


def _resolve(component, value):
    """`value`, or the callable an import string in the metadata names."""
    if value is None or callable(value):
        return value
    from keraslm.registry import Component

    return Component(name=component.name, family="command", plugin=component.plugin,
                     factory=value).load()


def build_parser() -> argparse.ArgumentParser:
    """The `keraslm` parser with one sub-parser per registered command."""
    from keraslm import __version__, registry

    parser = argparse.ArgumentParser(
        prog="keraslm",
        description="Build, train and ship Keras language models.",
    )
    parser.add_argument("--version", action="version",
                        version=f"keraslm {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in sorted(registry.commands, key=lambda c: c.name):
        sub = subparsers.add_parser(command.name, help=command.description,
                                    description=command.description)
        configure = _resolve(command, command.metadata.get("configure"))
        if configure is not None:
            configure(sub)
        sub.set_defaults(_command=command)
    return parser


def main(argv=None) -> int:
    """Runs the `keraslm` command line and returns its exit status."""
    from keraslm import plugins, registry
    from keraslm._names import unknown_name_message

    # TensorFlow's C++ start-up chatter hides our output; users can override.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        names = registry.commands.names()
        if argv and not argv[0].startswith("-") and argv[0] not in names:
            print(f"keraslm: error: {unknown_name_message('command', argv[0], names)}",
                  file=sys.stderr)
            return 2
        parser = build_parser()
    except (plugins.PluginError, registry.RegistryError) as error:
        print(f"keraslm: error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    command = getattr(args, "_command", None)
    if command is None:
        parser.print_help()
        return 0
    try:
        status = command.load()(args)
    except KeyboardInterrupt:
        print("keraslm: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line for the user, never a traceback
        if os.environ.get("KERASLM_DEBUG"):
            raise
        print(_error_line(args.command, command, error), file=sys.stderr)
        return 1
    return 0 if status is None else int(status)


def _user_errors():
    from keraslm import plugins, registry
    from keraslm.exporting import ExportError
    from keraslm.training.run import TrainingError
    from keraslm.training.run_directory import RunLockedError

    return (ValueError, OSError, plugins.PluginError, registry.RegistryError,
            TrainingError, RunLockedError, ExportError)


def _error_line(name, command, error):
    """What the user reads: the error, or for a bug where it came from."""
    if isinstance(error, _user_errors()):
        return f"keraslm {name}: error: {error}"
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    origin = frames[-1] if frames else None
    where = f" at {origin.filename}:{origin.lineno}" if origin else ""
    plugin = ("" if command.plugin.startswith("keraslm.")
              else f" (command from plugin '{command.plugin}')")
    return (f"keraslm {name}: unexpected error{plugin}: {type(error).__name__}: "
            f"{error}{where}. This is a bug; re-run with KERASLM_DEBUG=1 for the "
            f"traceback.")


if __name__ == "__main__":
    sys.exit(main())
