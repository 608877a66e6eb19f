"""keraslm-ner: named-entity recognition as an external keraslm plugin.

The task extends the core's `tag` task (`keraslm.tasks.tag.TaggingTask`):
the same CoNLL reader, first-subword labels, head and loss, with entity tags
checked and converted on reading and entity-level scores in the evaluation.
Without this plugin `--task ner` is an unknown task. Installing it registers:

- task `ner` (`keraslm_ner.task.EntityTask`): CoNLL files whose tag column
  holds IOB2 (BIO) or IOB1 entity tags (option `scheme`, `--scheme`, besides
  the tag task's `token_column` and `tag_column`); malformed tags are refused
  with the file and line before training; evaluation reports entity
  precision, recall and F1 (exact span and type, as seqeval), F1 per type,
  and the tag task's word accuracy and macro F1;
- metrics `entity_precision`, `entity_recall` and `entity_f1`
  (`keraslm_ner.metrics`): `keras.metrics.Metric`s over tag ids.

Example:

```bash
keraslm train --task ner --train train.conll --valid valid.conll --scheme iob1 -o runs/ner
```

```python
import keraslm

f1 = keraslm.registry.metrics.build("entity_f1", labels=["B-PER", "I-PER", "O"])
```
"""

import keraslm

__version__ = "0.1.0"


@keraslm.hookimpl
def register_tasks(register):
    register("ner", "keraslm_ner.task:EntityTask",
             description="Named entities (IOB2/IOB1 tags); entity precision, recall, F1.")


@keraslm.hookimpl
def register_metrics(register):
    register("entity_precision", "keraslm_ner.metrics:EntityPrecision",
             description="Share of predicted entities that are exactly right (span, type).")
    register("entity_recall", "keraslm_ner.metrics:EntityRecall",
             description="Share of gold entities predicted exactly (span, type).")
    register("entity_f1", "keraslm_ner.metrics:EntityF1",
             description="Micro F1 of entities, exact span and type (seqeval's default).")
