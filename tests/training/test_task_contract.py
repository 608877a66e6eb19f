"""Every built-in task passes `keraslm.testing.run_task_test` on real data.

The same check that plugin tasks (`keraslm-qa`, `keraslm-ner`) run on
themselves: declarations, data, a short training that must lower the loss,
the declared metrics, a reload of the run directory that gives the same
numbers, and the export sample inputs.
"""

import pytest

from keraslm import registry
from keraslm.builtins.tasks import TASKS
from keraslm.testing import run_task_test

# Word-level vocabularies: they learn in milliseconds, and the contract is
# about the task, not the tokenizer (tests/text checks the tokenizers).
DATA = {
    "lm": dict(train="lm_train", valid="lm_valid", tokenizer="character"),
    "mlm": dict(train="reviews_train", valid="reviews_test", tokenizer="word"),
    "classify": dict(train="reviews_train", valid="reviews_test", tokenizer="word",
                     min_loss_drop=0.05),
    "tag": dict(train="brown_train", valid="brown_test", tokenizer="word"),
    "translate": dict(train="bible_train", valid="bible_valid", tokenizer="word"),
}


def test_ignore_index_is_the_pipelines():
    from keraslm import tasks
    from keraslm.text import special_tokens

    assert tasks.IGNORE_INDEX == special_tokens.IGNORE_INDEX


def test_every_builtin_task_has_contract_data():
    assert set(DATA) == set(TASKS)
    assert {c.name for c in registry.tasks if c.plugin == "keraslm.builtins.tasks"} == set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_builtin_task_passes_run_task_test(name, corpus, tmp_path):
    settings = dict(DATA[name])
    files = {key: corpus[settings.pop(key)] for key in ("train", "valid")}
    run_task_test(registry.tasks.get(name).load(), **files,
                  output_dir=tmp_path / "run", **settings)


def test_train_help_lists_every_option_under_every_task_that_has_it():
    """An option two tasks share (`split` of lm and mlm, `tag_column` of tag
    and ner) is one flag, listed under a group naming both tasks."""
    import argparse

    from keraslm.commands import train

    parser = argparse.ArgumentParser(prog="keraslm train")
    train.configure(parser)
    titles = {}
    for group in parser._action_groups:
        prefix = "options of task"
        if group.title.startswith(prefix):
            tasks = group.title[len(prefix):].lstrip("s ").split(", ")
            for action in group._group_actions:
                titles[action.option_strings[0]] = set(tasks)
    for component in registry.tasks:
        for name in component.load().option_names():
            flag = "--" + name.replace("_", "-")
            assert component.name in titles.get(flag, ()), (component.name, flag, titles)
