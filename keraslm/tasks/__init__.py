"""Tasks: one module per task, each a `Task` subclass registered by a hook.

Built in: `lm` (`keraslm.tasks.lm`), `mlm`, `classify`, `tag`, `translate`;
plugins add more (`keraslm-qa` adds `qa`, `keraslm-ner` adds `ner`) through
`register_tasks`. `get_task(config)` builds the task a configuration names.

Example:

```python
import keraslm

keraslm.registry.tasks.names()     # ['classify', 'lm', 'mlm', 'tag', 'translate', ...]
task_class = keraslm.tasks.task_class("lm")
task_class.Options                 # the task's options dataclass
```
"""

from keraslm.tasks.base import (
    IGNORE_INDEX, NoOptions, Task, get_task, task_class, token_metrics,
)
from keraslm.tasks.classify import ClassificationTask
from keraslm.tasks.lm import LanguageModelTask
from keraslm.tasks.mlm import MaskedLanguageModelTask
from keraslm.tasks.tag import TaggingTask
from keraslm.tasks.translate import TranslationTask

__all__ = [
    "ClassificationTask", "IGNORE_INDEX", "LanguageModelTask",
    "MaskedLanguageModelTask", "NoOptions", "TaggingTask", "Task", "TranslationTask",
    "get_task", "task_class", "token_metrics",
]
