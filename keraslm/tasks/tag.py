"""The `tag` task: sequence labelling (part-of-speech tags, chunks).

Reads CoNLL files (`token<TAB>tag`, a blank line between sentences),
tokenizes each word on its own and labels its first subword, and reports
word-level loss, accuracy and macro F1. A tag that training never saw cannot
be predicted: such words count as errors and are reported.

When the labels are entity tags (BIO/IOB2: each `O`, `B-TYPE` or `I-TYPE`),
`evaluate` also reports entity-level precision, recall and F1, micro and per
type, as seqeval and conlleval compute them
(`keraslm.evaluation.entity_metrics`).

```bash
keraslm train --task tag --train brown/train.conll --test brown/test.conll -o runs/pos
```
"""

import dataclasses
import warnings

from keraslm.tasks.base import IGNORE_INDEX, Task


@dataclasses.dataclass
class TaggingOptions:
    token_column: int | None = None  # CoNLL column of the word (None: the first of two)
    tag_column: int | None = None    # CoNLL column of the tag (None: the last of two; -1 = last)


class TaggingTask(Task):
    name = "tag"
    description = "Sequence labelling (CoNLL); word accuracy, macro F1; entity F1 for BIO tags."
    Options = TaggingOptions
    formats = ("conll",)
    head = "token_classification"
    init_from_tasks = ("mlm", "tag")
    metrics = ("accuracy", "macro_f1")

    def read(self, path):
        from keraslm import data

        return data.read_conll(path, token_column=self.options.token_column,
                               tag_column=self.options.tag_column)

    def split(self, examples):
        from keraslm import data

        (tokens, tags), (valid_tokens, valid_tags) = data.train_validation_split(
            examples.tokens, examples.tags,
            validation_fraction=self.config.validation_fraction, seed=self.config.seed,
            group_duplicates=False)
        return (data.TaggedSentences(tokens, tags, None, examples.path),
                data.TaggedSentences(valid_tokens, valid_tags, None, examples.path))

    def texts(self, examples):
        return [" ".join(words) for words in examples.tokens]

    def size(self, examples):
        return len(examples.tokens)

    def fit_labels(self, examples):
        from keraslm import text

        if self.label_vocabulary is None:
            self.label_vocabulary = text.LabelVocabulary.fit(
                [tag for sentence in examples.tags for tag in sentence])

    def head_options(self):
        return {"num_classes": len(self.label_vocabulary), **self.config.head_options}

    def auto_defaults(self, examples, statistics, seconds):
        """A WordPiece vocabulary from the corpus (case kept: it tells
        proper nouns), and a small Transformer encoder whose first layer
        also sees hashed pairs of adjacent pieces; one layer of width 64 for
        budgets under 5 minutes, two of width 128 otherwise."""
        from keraslm.training import auto

        choices = super().auto_defaults(examples, statistics, seconds)
        if seconds < 300:
            # A short budget: whole words (one id each, case kept), so the
            # model knows each word's tags from the first steps; measured on
            # 1,350 Brown sentences, 2,000 WordPieces stalled at 74% word
            # accuracy (the most frequent tag: 78%).
            size = int(min(statistics.repeated_words + 5, 40000))
            choices[0] = auto.Choice(
                "tokenizer", {"tokenizer": "word", "vocabulary_size": max(size, 1000)},
                f"words (case kept) for a short budget: the {statistics.repeated_words:,} "
                f"seen twice or more", given_by=("tokenizer", "vocabulary_size",
                                                 "tokenizer_options"))
            shape = {"num_layers": 1, "num_heads": 2, "hidden_dim": 64,
                     "intermediate_dim": 256}
        else:
            shape = {"num_layers": 2, "num_heads": 4, "hidden_dim": 128,
                     "intermediate_dim": 512}
        choices.append(auto.Choice(
            "model", {"model": "transformer_encoder", "preset": None,
                      "model_options": {**shape, "max_sequence_length": 256,
                                        "ngram_buckets": 50_000},
                      "head_options": {"dropout": 0.1},
                      "learning_rate": 4e-3 if seconds < 300 else 2e-3,
                      "schedule": "warmup_linear"},
            f"a {shape['num_layers']}-layer d{shape['hidden_dim']} encoder with hashed "
            f"piece pairs for a {auto.format_budget(seconds)} budget",
            given_by=("model", "preset", "model_options")))
        return choices

    def known_tags(self, examples):
        """`(examples with unseen tags replaced, per-word unseen flags)`."""
        from keraslm import data

        known = self.label_vocabulary
        fallback = known.labels[0]
        unseen = [[tag not in known for tag in sentence] for sentence in examples.tags]
        tags = [[fallback if missing else tag for tag, missing in zip(sentence, flags)]
                for sentence, flags in zip(examples.tags, unseen)]
        return data.TaggedSentences(examples.tokens, tags, None, examples.path), unseen

    def dataset(self, examples, tokenizer, training):
        from keraslm import data

        self.fit_labels(examples)
        if not training:
            # Validation during training: a tag training never saw cannot be
            # learned; it is scored against a known tag (the final evaluation
            # counts such words as errors and reports them).
            examples, unseen = self.known_tags(examples)
            missing = sum(map(sum, unseen))
            if missing:
                warnings.warn(f"{missing} validation words have tags the training "
                              f"data never shows; evaluate() counts them as errors.",
                              stacklevel=2)
        return self._model_inputs(data.token_classification_dataset(
            examples.tokens, examples.tags, tokenizer,
            label_vocabulary=self.label_vocabulary,
            sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed, source=examples.path,
            positions=getattr(examples, "lines", None)))

    def predict_sentences(self, model, examples, tokenizer, loss=None):
        """Per-sentence predictions: `(true, predicted, unseen, loss)`.

        `true[i]` and `predicted[i]` are int arrays of label ids over the
        words of sentence `i` kept after truncation (it cuts a sentence's
        end); `unseen[i][j]` marks words whose tag the training data never
        shows (their `true` id is a stand-in); `loss` is the mean loss per
        word.

        Example:

        ```python
        config, task, model, tokenizer = keraslm.training.load_run("runs/tag")
        true, predicted, unseen, loss = task.predict_sentences(
            model, task.read("test.conll"), tokenizer)
        tags = [task.label_vocabulary.labels[i] for i in predicted[0]]
        ```
        """
        import numpy as np

        from keraslm import data

        replaced, unseen = self.known_tags(examples)
        task_data = self._model_inputs(data.token_classification_dataset(
            replaced.tokens, replaced.tags, tokenizer,
            label_vocabulary=self.label_vocabulary,
            sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=False, seed=self.config.seed))
        loss = loss or self.default_loss_object()
        true, predicted, flags = [], [], []
        total = count = 0.0
        for x, y in task_data.dataset:
            logits = model(x, training=False)
            y = np.asarray(y)
            keep = y != IGNORE_INDEX
            total += float(loss(y, logits)) * keep.sum()
            count += keep.sum()
            ids = np.argmax(np.asarray(logits, "float32"), -1)
            for sentence_y, sentence_ids, sentence_keep in zip(y, ids, keep):
                row = len(true)
                true.append(sentence_y[sentence_keep])
                predicted.append(sentence_ids[sentence_keep])
                flags.append(np.array(unseen[row][:int(sentence_keep.sum())], bool))
        return true, predicted, flags, total / max(count, 1)

    def predict_words(self, model, examples, tokenizer, loss=None):
        """`predict_sentences` flattened: `(true, predicted, unseen, loss)`
        as flat arrays over all the words kept, in order."""
        import numpy as np

        true, predicted, unseen, mean_loss = self.predict_sentences(
            model, examples, tokenizer, loss)
        flat = [np.concatenate(part) if part else np.zeros(0, dtype)
                for part, dtype in ((true, "int64"), (predicted, "int64"), (unseen, bool))]
        return (*flat, mean_loss)

    def reports_entities(self) -> bool:
        """Whether `evaluate` scores entities: the label vocabulary looks like
        BIO/IOB2 entity tags (`keraslm.evaluation.entities.is_entity_label_set`:
        every label `O`, `B-TYPE` or `I-TYPE`, not all `O`)."""
        from keraslm.evaluation.entities import is_entity_label_set

        return (self.label_vocabulary is not None
                and is_entity_label_set(self.label_vocabulary.labels))

    def predict_tags(self, model, examples, tokenizer, loss=None):
        """Per-sentence tags: `(gold, predicted, unseen, loss)`.

        `predict_sentences` with the ids as tag strings: `gold` and
        `predicted` are lists (one per sentence) over the words kept after
        truncation; `gold` holds the file's tags (unseen ones included),
        `unseen[i][j]` marks words whose gold tag the training data never
        shows (no prediction can match it).

        Example:

        ```python
        config, task, model, tokenizer = keraslm.training.load_run("runs/ner")
        gold, predicted, _, _ = task.predict_tags(model, task.read("test.conll"),
                                                  tokenizer)
        keraslm.evaluation.entity_metrics(gold, predicted)["f1"]
        ```
        """
        _, ids, unseen, mean_loss = self.predict_sentences(model, examples, tokenizer, loss)
        labels = self.label_vocabulary.labels
        predicted = [[labels[i] for i in sentence] for sentence in ids]
        gold = [list(tags[:len(p)]) for tags, p in zip(examples.tags, predicted)]
        return gold, predicted, [flags.tolist() for flags in unseen], mean_loss

    def evaluate(self, model, examples, tokenizer, loss=None):
        """Word accuracy and macro F1 (first subwords); unseen tags count as
        errors (`unseen_tag_words` says how many).

        When the labels are entity tags (`reports_entities`), also entity
        precision, recall and F1 (micro: `entity_precision`, `entity_recall`,
        `entity_f1`; `entity_macro_f1`; `per_type`: `{type: {precision,
        recall, f1, support}}`; `entities`, `predicted_entities`), over the
        file's tags as written: an entity of a tag training never saw
        counts as missed.
        """
        import numpy as np

        from keraslm import registry

        true, predicted, unseen, mean_loss = self.predict_sentences(
            model, examples, tokenizer, loss)
        flat_true, flat_predicted, flat_unseen = (
            np.concatenate(part) if part else np.zeros(0, dtype)
            for part, dtype in ((true, "int64"), (predicted, "int64"), (unseen, bool)))
        correct = (flat_true == flat_predicted) & ~flat_unseen
        f1 = registry.metrics.build("macro_f1", num_classes=len(self.label_vocabulary))
        f1.update_state(np.where(flat_unseen, -1, flat_true), flat_predicted)
        metrics = {
            "loss": mean_loss,
            "accuracy": float(np.mean(correct)),
            "macro_f1": float(f1.result()),
        }
        per_type = None
        if self.reports_entities():
            from keraslm.evaluation import entity_metrics

            labels = self.label_vocabulary.labels
            predicted_tags = [[labels[i] for i in sentence] for sentence in predicted]
            gold_tags = [list(tags[:len(p)]) for tags, p in zip(examples.tags,
                                                                predicted_tags)]
            report = entity_metrics(gold_tags, predicted_tags)
            per_type = report["per_type"]
            metrics.update({
                "entity_precision": report["precision"],
                "entity_recall": report["recall"],
                "entity_f1": report["f1"],
                "entity_macro_f1": report["macro"]["f1"],
                "entities": report["entities"],
                "predicted_entities": report["predicted_entities"],
            })
        metrics.update({"words": int(len(flat_true)),
                        "unseen_tag_words": int(flat_unseen.sum())})
        if per_type is not None:
            metrics["per_type"] = per_type
        return metrics
