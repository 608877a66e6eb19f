"""What differs between tasks: data, head, loss and evaluation.

Each `Task` turns files into `tf.data` batches for its head, names the loss
and evaluates a model on examples. `keraslm.training.run` drives them all the
same way.
"""

import json
import math
import os

import numpy as np
import tensorflow as tf

from keraslm import data, registry, text
from keraslm.text.special_tokens import IGNORE_INDEX


def macro_f1(true, predicted, num_classes):
    """Macro-averaged F1 over the classes present in `true` or `predicted`."""
    scores = []
    for label in range(num_classes):
        tp = np.sum((predicted == label) & (true == label))
        fp = np.sum((predicted == label) & (true != label))
        fn = np.sum((predicted != label) & (true == label))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def confusion_matrix(true, predicted, num_classes):
    matrix = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


class Task:
    """Base class; subclasses fill in the task-specific parts."""

    name = ""
    head = ""
    single_input = True     # the model takes token ids only

    def __init__(self, config):
        self.config = config
        self.label_vocabulary = None

    # -- data ---------------------------------------------------------------
    def read(self, path):
        """Reads one file into this task's examples."""
        raise NotImplementedError

    def split(self, examples):
        """Deterministic train/validation split of one file's examples."""
        raise NotImplementedError

    def texts(self, examples):
        """Strings to train a tokenizer on."""
        raise NotImplementedError

    def dataset(self, examples, tokenizer, training):
        """A `TaskData` of `(x, y)` batches for `model.fit`/evaluation."""
        raise NotImplementedError

    def size(self, examples) -> int:
        return len(self.texts(examples))

    def fit_labels(self, examples):
        """Builds the label vocabulary from a whole training file (before any
        validation split), for tasks with labels."""

    def _model_inputs(self, task_data):
        def select(x, y, *weights):
            if self.single_input:
                return x["token_ids"], y
            return {"encoder_token_ids": x["encoder_token_ids"],
                    "decoder_token_ids": x["decoder_token_ids"]}, y

        task_data.dataset = task_data.dataset.map(select)
        return task_data

    # -- model --------------------------------------------------------------
    def head_options(self):
        return dict(self.config.head_options)

    def loss(self):
        config = self.config
        if config.loss != "auto":
            options = {}
            component = registry.losses.get(config.loss)
            if component.name in ("masked_sparse_categorical_crossentropy",
                                  "label_smoothed_crossentropy", "focal"):
                options["ignore_class"] = IGNORE_INDEX
            return component.build(**options)
        return registry.losses.build("masked_sparse_categorical_crossentropy",
                                     ignore_class=IGNORE_INDEX,
                                     label_smoothing=config.label_smoothing)

    def save_assets(self, run_dir):
        if self.label_vocabulary is not None:
            self.label_vocabulary.save(os.path.join(run_dir, "labels.json"))

    def load_assets(self, run_dir):
        path = os.path.join(run_dir, "labels.json")
        if os.path.exists(path):
            self.label_vocabulary = text.LabelVocabulary.load(path)

    # -- evaluation ---------------------------------------------------------
    def evaluate(self, model, examples, tokenizer) -> dict:
        raise NotImplementedError


def _token_statistics(model, dataset):
    """Sums of token NLL, correct predictions and counts over a dataset."""
    @tf.function
    def batch_statistics(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        valid = tf.not_equal(y, IGNORE_INDEX)
        labels = tf.where(valid, y, tf.zeros_like(y))
        nll = -tf.gather(log_probs, labels, batch_dims=len(labels.shape))
        correct = tf.equal(tf.cast(tf.argmax(logits, -1), labels.dtype), labels)
        weights = tf.cast(valid, tf.float32)
        return (tf.reduce_sum(nll * weights), tf.reduce_sum(tf.cast(correct, tf.float32) * weights),
                tf.reduce_sum(weights))

    total_nll = total_correct = total = 0.0
    for x, y in dataset:
        nll, correct, count = batch_statistics(x, y)
        total_nll += float(nll)
        total_correct += float(correct)
        total += float(count)
    return total_nll, total_correct, total


def _token_metrics(model, task_data, count_name):
    """loss, perplexity and accuracy over the labelled tokens of a dataset."""
    nll, correct, count = _token_statistics(model, task_data.dataset)
    loss = nll / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
            "accuracy": correct / count, count_name: int(count)}


class LanguageModelTask(Task):
    name = "lm"
    head = "causal_lm"

    def read(self, path):
        if self.config.split == "line" and not str(path).endswith(
                (".csv", ".tsv", ".jsonl")):
            # Empty lines are text too: each is one end-of-line to predict, so
            # bits per character covers every character of the file.
            return data.read_text(path, split="line", keep_empty=True)
        return data.read_examples(path, text_column=self.config.text_column,
                                  split=self.config.split)

    def split(self, examples):
        return data.train_validation_split(
            examples, validation_fraction=self.config.validation_fraction,
            seed=self.config.seed, group_duplicates=False)

    def texts(self, examples):
        return examples

    def dataset(self, examples, tokenizer, training, stride=None):
        return self._model_inputs(data.causal_lm_dataset(
            examples, tokenizer, sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed,
            random_offsets=training and self.config.random_offsets,
            stride=None if training else stride))

    def evaluate(self, model, examples, tokenizer):
        # Scored with `eval_stride`: every token once, with at least
        # `sequence_length - eval_stride` tokens of context after the first window.
        metrics = _token_metrics(
            model, self.dataset(examples, tokenizer, False, self.config.eval_stride),
            "tokens")
        # Each text is followed by an end-of-text token, the newline it
        # stands for: that character is counted too.
        characters = sum(len(t) + 1 for t in examples)
        total_nll = metrics["loss"] * metrics["tokens"]
        metrics["bits_per_character"] = total_nll / characters / math.log(2)
        metrics["characters"] = characters
        return metrics


class MaskedLanguageModelTask(LanguageModelTask):
    name = "mlm"
    head = "masked_lm"

    def dataset(self, examples, tokenizer, training):
        return self._model_inputs(data.masked_lm_dataset(
            examples, tokenizer, sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed))

    def evaluate(self, model, examples, tokenizer):
        return _token_metrics(model, self.dataset(examples, tokenizer, False),
                              "masked_tokens")


class ClassificationTask(Task):
    name = "classify"
    head = "classification"

    def read(self, path):
        return data.read_table(path, text_column=self.config.text_column,
                               label_column=self.config.label_column,
                               format=self.config.format)

    def split(self, examples):
        (texts, labels), (valid_texts, valid_labels) = data.train_validation_split(
            examples.texts, examples.labels,
            validation_fraction=self.config.validation_fraction, seed=self.config.seed)
        return (data.TextExamples(texts, labels, None, examples.path),
                data.TextExamples(valid_texts, valid_labels, None, examples.path))

    def texts(self, examples):
        return examples.texts

    def fit_labels(self, examples):
        if self.label_vocabulary is None:
            self.label_vocabulary = text.LabelVocabulary.fit(examples.labels)

    def dataset(self, examples, tokenizer, training):
        self.fit_labels(examples)
        return self._model_inputs(data.classification_dataset(
            examples.texts, examples.labels, tokenizer,
            label_vocabulary=self.label_vocabulary,
            sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed, source=examples.path,
            positions=getattr(examples, "lines", None)))

    def head_options(self):
        return {"num_classes": len(self.label_vocabulary),
                **self.config.head_options}

    def evaluate(self, model, examples, tokenizer):
        task_data = self.dataset(examples, tokenizer, training=False)
        true, predicted, losses = [], [], []
        for x, y in task_data.dataset:
            logits = tf.cast(model(x, training=False), tf.float32)
            losses.append(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.cast(y, tf.int32), logits).numpy())
            true.append(np.asarray(y))
            predicted.append(np.argmax(logits, -1))
        true, predicted = np.concatenate(true), np.concatenate(predicted)
        num_classes = len(self.label_vocabulary)
        return {
            "loss": float(np.mean(np.concatenate(losses))),
            "accuracy": float(np.mean(true == predicted)),
            "macro_f1": macro_f1(true, predicted, num_classes),
            "confusion_matrix": confusion_matrix(true, predicted, num_classes).tolist(),
            "labels": self.label_vocabulary.labels,
            "examples": int(len(true)),
        }


class TaggingTask(ClassificationTask):
    name = "tag"
    head = "token_classification"

    def read(self, path):
        return data.read_conll(path)

    def split(self, examples):
        (tokens, tags), (valid_tokens, valid_tags) = data.train_validation_split(
            examples.tokens, examples.tags,
            validation_fraction=self.config.validation_fraction, seed=self.config.seed,
            group_duplicates=False)
        return (data.TaggedSentences(tokens, tags, None, examples.path),
                data.TaggedSentences(valid_tokens, valid_tags, None, examples.path))

    def texts(self, examples):
        return [" ".join(words) for words in examples.tokens]

    def fit_labels(self, examples):
        if self.label_vocabulary is None:
            self.label_vocabulary = text.LabelVocabulary.fit(
                [tag for sentence in examples.tags for tag in sentence])

    def _known_tags(self, examples):
        """`(examples with unseen tags replaced, per-word unseen flags)`."""
        known = self.label_vocabulary
        fallback = known.labels[0]
        unseen = [[tag not in known for tag in sentence] for sentence in examples.tags]
        tags = [[fallback if missing else tag for tag, missing in zip(sentence, flags)]
                for sentence, flags in zip(examples.tags, unseen)]
        return data.TaggedSentences(examples.tokens, tags, None, examples.path), unseen

    def dataset(self, examples, tokenizer, training):
        self.fit_labels(examples)
        if not training:
            # Validation during training: a tag training never saw cannot be
            # learned; it is scored against a known tag (the final evaluation
            # counts such words as errors and reports them).
            examples, unseen = self._known_tags(examples)
            missing = sum(map(sum, unseen))
            if missing:
                import warnings

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

    def evaluate(self, model, examples, tokenizer):
        """Token accuracy and macro F1 over words (first subwords).

        A tag that training never saw cannot be predicted: such words are
        kept (given a known tag for the pipeline) and always counted as
        errors; `unseen_tag_words` reports how many there were.
        """
        known = self.label_vocabulary
        replaced, unseen = self._known_tags(examples)
        task_data = self._model_inputs(data.token_classification_dataset(
            replaced.tokens, replaced.tags, tokenizer, label_vocabulary=known,
            sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=False, seed=self.config.seed))
        true, predicted, wrong = [], [], []
        nll = count = 0.0
        row = 0
        for x, y in task_data.dataset:
            logits = tf.cast(model(x, training=False), tf.float32)
            y = np.asarray(y)
            keep = y != IGNORE_INDEX
            log_probs = tf.nn.log_softmax(logits).numpy()[keep]
            nll -= float(np.sum(log_probs[np.arange(keep.sum()), y[keep]]))
            count += keep.sum()
            true.append(y[keep])
            predicted.append(np.argmax(np.asarray(logits)[keep], -1))
            for sentence_keep in keep:  # words kept in order (truncation cuts the end)
                wrong.extend(unseen[row][:int(sentence_keep.sum())])
                row += 1
        true, predicted = np.concatenate(true), np.concatenate(predicted)
        wrong = np.array(wrong, bool)
        correct = (true == predicted) & ~wrong
        num_classes = len(known)
        predicted_or_unknown = np.where(wrong, -1, predicted)
        return {
            "loss": nll / count,
            "accuracy": float(np.mean(correct)),
            "macro_f1": macro_f1(np.where(wrong, -2, true), predicted_or_unknown,
                                 num_classes),
            "words": int(count),
            "unseen_tag_words": int(wrong.sum()),
        }


class TranslationTask(Task):
    name = "translate"
    head = "seq2seq_lm"
    single_input = False

    def read(self, path):
        return data.read_pairs(path)

    def split(self, examples):
        (sources, targets), (valid_sources, valid_targets) = data.train_validation_split(
            examples.sources, examples.targets,
            validation_fraction=self.config.validation_fraction, seed=self.config.seed)
        return (data.TextPairs(sources, targets, None, examples.path),
                data.TextPairs(valid_sources, valid_targets, None, examples.path))

    def texts(self, examples):
        return list(examples.sources) + list(examples.targets)

    def size(self, examples):
        return len(examples.sources)

    def dataset(self, examples, tokenizer, training):
        return self._model_inputs(data.seq2seq_dataset(
            examples.sources, examples.targets, tokenizer,
            source_length=self.config.sequence_length,
            target_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed))

    def evaluate(self, model, examples, tokenizer):
        return _token_metrics(model, self.dataset(examples, tokenizer, False),
                              "target_tokens")


class QuestionAnsweringTask(Task):
    """Extractive QA from JSONL lines `{"question", "context", "answer"}`.

    The answer must occur in the context (the first occurrence is used, or
    the one at `answer_start` characters when given). Inputs are
    `[CLS] question [SEP] context [SEP]`; the targets are the answer's first
    and last token positions.
    """

    name = "qa"
    head = "qa_span"

    def read(self, path):
        examples = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise data.DataError(f"{path}:{number}: not valid JSON: {error.msg}")
                missing = {"question", "context", "answer"} - set(record)
                if missing:
                    raise data.DataError(
                        f"{path}:{number}: missing field(s) {sorted(missing)}; each "
                        f"line needs question, context and answer. Received keys: "
                        f"{sorted(record)}")
                start = record.get("answer_start")
                if start is None:
                    start = record["context"].find(record["answer"])
                if start < 0 or record["context"][start:start + len(record["answer"])] != record["answer"]:
                    raise data.DataError(
                        f"{path}:{number}: the answer {record['answer']!r} is not a "
                        f"span of the context.")
                examples.append((record["question"], record["context"], start,
                                 record["answer"]))
        if not examples:
            raise data.DataError(f"{path}: no QA examples found.")
        return examples

    def split(self, examples):
        train, valid = data.train_validation_split(
            examples, validation_fraction=self.config.validation_fraction,
            seed=self.config.seed, group_duplicates=False)
        return train, valid

    def texts(self, examples):
        return [q for q, *_ in examples] + [c for _, c, *_ in examples]

    def encode(self, examples, tokenizer):
        length = self.config.sequence_length
        rows, spans, truncated = [], [], 0
        for question, context, start, answer in examples:
            end = start + len(answer)
            question_ids = tokenizer.encode(question)
            before = tokenizer.encode(context[:start]) if start else []
            inside = tokenizer.encode(answer)
            after = tokenizer.encode(context[end:]) if end < len(context) else []
            ids = ([tokenizer.cls_id] + question_ids + [tokenizer.sep_id] + before
                   + inside + after + [tokenizer.sep_id])
            first = 2 + len(question_ids) + len(before)
            last = first + len(inside) - 1
            if last >= length:
                truncated += 1
                continue
            ids = ids[:length]
            rows.append(ids + [0] * (length - len(ids)))
            spans.append([first, last])
        if truncated:
            import warnings

            warnings.warn(f"{truncated} QA examples whose answer ends beyond "
                          f"sequence_length={length} tokens were left out.",
                          data.TruncationWarning, stacklevel=2)
        return np.array(rows, "int32"), np.array(spans, "int32")

    def dataset(self, examples, tokenizer, training):
        token_ids, spans = self.encode(examples, tokenizer)
        dataset = tf.data.Dataset.from_tensor_slices((token_ids, spans))
        if training:
            dataset = dataset.shuffle(len(token_ids), seed=self.config.seed)
        dataset = dataset.batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)
        return data.TaskData(dataset, num_examples=len(token_ids),
                             batch_size=self.config.batch_size)

    def loss(self):
        return registry.losses.build("span" if self.config.loss == "auto" else self.config.loss)

    def evaluate(self, model, examples, tokenizer):
        token_ids, spans = self.encode(examples, tokenizer)
        logits = model.predict(token_ids, batch_size=self.config.batch_size, verbose=0)
        results = {"loss": float(self.loss()(spans, logits)), "examples": len(spans)}
        for name in ("span_exact_match", "span_f1"):
            metric = registry.metrics.build(name,
                                            max_answer_length=self.config.max_answer_length)
            metric.update_state(spans, logits)
            results[name.replace("span_", "")] = float(metric.result())
        return results


TASKS = {task.name: task for task in (
    LanguageModelTask, MaskedLanguageModelTask, ClassificationTask, TaggingTask,
    TranslationTask, QuestionAnsweringTask)}
