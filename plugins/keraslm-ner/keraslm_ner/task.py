"""The `ner` task: named-entity recognition on top of the `tag` task.

`EntityTask` is `keraslm.tasks.tag.TaggingTask` (CoNLL reader, one word per
line, first-subword labels, the `token_classification` head and its loss)
with three changes:

- reading: the tag column holds entity tags in the scheme of the `scheme`
  option, IOB2 (= BIO, the default) or IOB1. Each tag is checked and the
  tags are stored as IOB2; a tag that is not `O`, `B-TYPE` or `I-TYPE`, or
  (IOB2) an `I-` that continues no entity, is a `keraslm.data.DataError`
  naming the file, the line, the word and its tag, raised when the file is
  read, before any training;
- evaluation: the tag task's, which for entity tags reports entity
  precision, recall and F1 (an entity is right when its first word, last
  word and type are: conlleval and seqeval's default mode, computed by
  `keraslm.evaluation.entity_metrics`), the scores per type (`per_type`),
  and the word `accuracy` and `macro_f1`; here it always does;
- runs of `tag` and `ner` (and `mlm`) can start a `ner` run (`--init-from`).

```bash
keraslm train --task ner --train train.conll --valid valid.conll --scheme iob1 \
    --tag-column 3 -o runs/ner
```
"""

import dataclasses

from keraslm.tasks.tag import TaggingOptions, TaggingTask

from keraslm_ner.schemes import TagError, scheme_name, to_iob2


@dataclasses.dataclass
class EntityOptions(TaggingOptions):
    scheme: str = "iob2"     # entity tags of the tag column: iob2 (= bio) or iob1; stored as iob2


class EntityTask(TaggingTask):
    """Named-entity recognition: IOB2/IOB1 tags, entity-level scores."""

    name = "ner"
    description = "Named entities (IOB2/IOB1 tags); entity precision, recall, F1."
    Options = EntityOptions
    init_from_tasks = ("mlm", "tag", "ner")
    metrics = ("accuracy", "macro_f1", "entity_precision", "entity_recall", "entity_f1")

    def check(self):
        super().check()
        scheme_name(self.options.scheme)

    def read(self, path):
        """CoNLL sentences with their entity tags checked and in IOB2."""
        from keraslm import data
        from keraslm.data.errors import where

        examples = super().read(path)
        scheme = scheme_name(self.options.scheme)
        tags = []
        for words, sentence, first_line in zip(examples.tokens, examples.tags,
                                               examples.lines):
            try:
                tags.append(to_iob2(sentence, scheme))
            except TagError as error:
                line = first_line + error.index
                raise data.DataError(
                    f"{where(path, line)}: {error} Received: word "
                    f"{words[error.index]!r}, tag {sentence[error.index]!r} "
                    f"(tag_column={-1 if self.options.tag_column is None else self.options.tag_column}, "
                    f"scheme={scheme}).",
                    path=path, line=line) from None
        return data.TaggedSentences(examples.tokens, tags, examples.lines, examples.path)

    def reports_entities(self) -> bool:
        """Always: the labels are entity tags (checked when read)."""
        return True
