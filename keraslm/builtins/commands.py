"""Built-in `keraslm` sub-commands.

`plugins`, `quickstart`, `train`, `evaluate`, `generate`, `export`; the
implementations live in `keraslm.cli_train` and `keraslm.quickstart` and are
imported only when a command runs.
"""

from keraslm.hookspecs import hookimpl


def _configure_plugins(parser):
    parser.add_argument("--all", action="store_true",
                        help="include keraslm's built-in plugins")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of a table")


def _run_plugins(args):
    import json

    from keraslm import plugins

    report = plugins.describe_plugins(include_builtins=args.all)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
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
    for error in report["errors"]:
        print(f"ERROR {error}")
    return 0


def _lazy(module, function):
    def call(*args):
        import importlib

        return getattr(importlib.import_module(module), function)(*args)

    return call


@hookimpl
def register_commands(cli):
    cli.add_command("plugins", _run_plugins,
                    help="List installed plugins, their hooks and components.",
                    configure=_configure_plugins)
    cli.add_command("quickstart", _lazy("keraslm.quickstart", "run"),
                    help="Train, evaluate, sample and export a small LM on the "
                         "default data (a few minutes on a CPU).",
                    configure=_lazy("keraslm.quickstart", "configure"))
    cli.add_command("train", _lazy("keraslm.cli_train", "run_train"),
                    help="Train a model for a task; writes a run directory.",
                    configure=_lazy("keraslm.cli_train", "configure_train"))
    cli.add_command("evaluate", _lazy("keraslm.cli_train", "run_evaluate"),
                    help="Evaluate a run's model on a file.",
                    configure=_lazy("keraslm.cli_train", "configure_evaluate"))
    cli.add_command("generate", _lazy("keraslm.cli_train", "run_generate"),
                    help="Generate text with a language-model run.",
                    configure=_lazy("keraslm.cli_train", "configure_generate"))
    cli.add_command("export", _lazy("keraslm.cli_train", "run_export"),
                    help="Export a run's model (saved_model, onnx, ...) with a "
                         "parity check in the target runtime.",
                    configure=_lazy("keraslm.cli_train", "configure_export"))
