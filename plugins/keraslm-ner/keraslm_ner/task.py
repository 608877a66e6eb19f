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
- evaluation: entity precision, recall and F1 (an entity is right when its
  first word, last word and type are: conlleval and seqeval's default mode),
  the scores per type (`per_type`), and the tag task's word `accuracy` and
  `macro_f1`;
- runs of `tag` and `ner` (and `mlm`) can start a `ner` run (`--init-from`).

```bash
keraslm train --task ner --train train.conll --valid valid.conll --scheme iob1 \
    --tag-column 3 -o runs/ner
```
"""

import dataclasses

from keraslm.tasks.base import IGNORE_INDEX
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

    def predict_tags(self, model, examples, tokenizer, loss=None):
        """Per-sentence tags: `(gold, predicted, unseen, loss)`.

        The tag task's `predict_sentences` with the ids as IOB2 tag strings:
        `gold` and `predicted` are lists (one per sentence) over the words
        kept after truncation; `gold` holds the file's tags (unseen ones
        included), `unseen[i][j]` marks words whose gold tag the training
        data never shows (no prediction can match it).
        """
        _, ids, unseen, mean_loss = self.predict_sentences(model, examples, tokenizer, loss)
        labels = self.label_vocabulary.labels
        predicted = [[labels[i] for i in sentence] for sentence in ids]
        gold = [tags[:len(p)] for tags, p in zip(examples.tags, predicted)]
        return gold, predicted, [flags.tolist() for flags in unseen], mean_loss

    def evaluate(self, model, examples, tokenizer, loss=None):
        """Entity precision, recall and F1 (micro, exact span and type), the
        same per type (`per_type`), word accuracy and macro F1.

        Gold entities come from the file's tags, so an entity of a type (or
        with a tag) training never saw counts as missed.
        """
        import numpy as np

        from keraslm import registry

        gold, predicted, unseen, mean_loss = self.predict_tags(
            model, examples, tokenizer, loss)
        known = self.label_vocabulary.labels
        flat_gold = [tag for sentence in gold for tag in sentence]
        flat_predicted = [tag for sentence in predicted for tag in sentence]
        flat_unseen = np.array([flag for sentence in unseen for flag in sentence], bool)
        # The tag task's word scores (unseen tags count as errors).
        index = {label: i for i, label in enumerate(known)}
        true_ids = np.array([-1 if missing else index[tag]
                             for tag, missing in zip(flat_gold, flat_unseen)], "int32")
        predicted_ids = np.array([index[tag] for tag in flat_predicted], "int32")
        macro_f1 = registry.metrics.build("macro_f1", num_classes=len(known))
        macro_f1.update_state(true_ids, predicted_ids)
        # Entities, over the gold tags as written (unseen ones included).
        labels = known + sorted({tag for tag in flat_gold if tag not in index})
        entity_f1 = registry.metrics.build("entity_f1", labels=labels)
        entity_f1.update_state(*(_padded_ids(sentences, labels)
                                 for sentences in (gold, predicted)))
        scores = entity_f1.scores()
        return {
            "loss": mean_loss,
            "accuracy": float(np.mean([g == p for g, p in zip(flat_gold, flat_predicted)])),
            "macro_f1": float(macro_f1.result()),
            "entity_precision": scores["precision"],
            "entity_recall": scores["recall"],
            "entity_f1": scores["f1"],
            "per_type": scores["per_type"],
            "entities": scores["entities"],
            "predicted_entities": scores["predicted_entities"],
            "words": len(flat_gold),
            "unseen_tag_words": int(flat_unseen.sum()),
        }


def _padded_ids(sentences, labels):
    """`(sentences, longest)` int32 tag ids, `IGNORE_INDEX` after each sentence."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    ids = np.full((len(sentences), max(map(len, sentences), default=1)), IGNORE_INDEX,
                  "int32")
    for row, sentence in enumerate(sentences):
        ids[row, :len(sentence)] = [index[tag] for tag in sentence]
    return ids
