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
