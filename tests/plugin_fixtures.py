"""Real plugin distributions for tests, installed with pip into a folder.

Each fixture plugin is a tiny distribution (pyproject.toml with a `keraslm`
entry point and a module), installed with `pip install --target`, so the
entry points are discovered by `importlib.metadata` exactly as for a plugin a
user pip-installs.
"""

import json
import os
import subprocess
import sys
import textwrap

PLUGINS = {
    "kl_good": '''
        import keraslm

        def hinge(margin=1.0):
            import keras
            return keras.losses.Hinge()

        @keraslm.hookimpl
        def register_losses(register):
            register("fixture_hinge", hinge, description="Hinge, from a fixture plugin.")

        @keraslm.hookimpl
        def register_commands(register):
            def configure(parser):
                parser.add_argument("name")

            def run(args):
                print(f"hello {args.name} from kl_good")

            register("hello", run, description="Say hello.", configure=configure)
    ''',
    "kl_task": '''
        """A whole task from a pip-installed plugin, with no line of core changed."""
        import dataclasses

        import keraslm
        from keraslm.tasks import ClassificationTask


        @dataclasses.dataclass
        class LongReviewOptions:
            minimum_words: int = 1   # reviews with fewer words are left out


        class LongReviewTask(ClassificationTask):
            name = "fixture_long_reviews"
            description = "Reviews of at least `minimum_words` words."
            Options = LongReviewOptions

            def read(self, path):
                from keraslm import data

                examples = super().read(path)
                keep = [i for i, text in enumerate(examples.texts)
                        if len(text.split()) >= self.options.minimum_words]
                return data.TextExamples([examples.texts[i] for i in keep],
                                         [examples.labels[i] for i in keep],
                                         [examples.lines[i] for i in keep], examples.path)


        @keraslm.hookimpl
        def register_tasks(register):
            register("fixture_long_reviews", LongReviewTask,
                     description=LongReviewTask.description)
    ''',
    "kl_broken": '''
        raise RuntimeError("kl_broken cannot start: missing configuration")
    ''',
    "kl_misspelled": '''
        import keraslm

        @keraslm.hookimpl
        def register_lossess(register):
            register("never_seen", lambda: None)
    ''',
    "kl_duplicate": '''
        import keraslm

        @keraslm.hookimpl
        def register_losses(register):
            register("masked_sparse_categorical_crossentropy", lambda: None)
    ''',
}


def build_and_install(root):
    """Writes each fixture distribution under `root` and pip-installs them all.

    Returns the folder to put on PYTHONPATH.
    """
    site = os.path.join(root, "site")
    sources = []
    for name, code in PLUGINS.items():
        source = os.path.join(root, "src", name)
        os.makedirs(os.path.join(source, name))
        with open(os.path.join(source, "pyproject.toml"), "w") as handle:
            handle.write(textwrap.dedent(f'''
                [build-system]
                requires = ["setuptools"]
                build-backend = "setuptools.build_meta"

                [project]
                name = "{name.replace('_', '-')}"
                version = "1.2.3"

                [project.entry-points.keraslm]
                {name} = "{name}"

                [tool.setuptools]
                packages = ["{name}"]
            '''))
        with open(os.path.join(source, name, "__init__.py"), "w") as handle:
            handle.write(textwrap.dedent(code))
        sources.append(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", site, *sources],
        check=True, capture_output=True, text=True,
    )
    return site


def run_keraslm(site, *args, load=None, strict=False, disable=None):
    """Runs `python -m keraslm ARGS` with the fixture plugins importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = site
    env["KERASLM_STRICT_PLUGINS"] = "1" if strict else "0"
    env.pop("KERASLM_LOAD_PLUGINS", None)
    env.pop("KERASLM_DISABLE_PLUGINS", None)
    if load is not None:
        env["KERASLM_LOAD_PLUGINS"] = load
    if disable is not None:
        env["KERASLM_DISABLE_PLUGINS"] = disable
    return subprocess.run([sys.executable, "-m", "keraslm", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def plugins_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
