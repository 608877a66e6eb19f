"""Arguments shared by the commands that read a run directory."""


def configure_run_dir(parser):
    parser.add_argument("run_dir", help="a keraslm run directory")
    parser.add_argument("--checkpoint", default="final",
                        help="final (model.keras), best or last")
