"""The `qa` task: extractive question answering, wholly inside this plugin.

Reads JSON lines `{"question", "context", "answer"}` (optionally
`"answer_start"`, the answer's character offset in the context; otherwise
its first occurrence), encodes `[CLS] question [SEP] context [SEP]` with the
answer's first and last token positions as targets, trains the `qa_span`
head with the `span` loss and reports loss, exact match and F1 over token
positions (SQuAD-style).

```bash
keraslm train --task qa --train qa_train.jsonl --valid qa_valid.jsonl \
    --init-from runs/mlm --max-answer-length 8 -o runs/qa
```
"""

import dataclasses
import json
import warnings

from keraslm.tasks import Task


@dataclasses.dataclass
class QuestionAnsweringOptions:
    max_answer_length: int = 30   # longest answer span in tokens (decoding and metrics)


class QuestionAnsweringTask(Task):
    """Extractive QA: predict the answer's span in the context."""

    name = "qa"
    description = "Extractive question answering; exact match and F1 of spans."
    Options = QuestionAnsweringOptions
    formats = ("jsonl",)
    head = "qa_span"
    default_loss = "span"
    init_from_tasks = ("mlm", "qa")
    metrics = ("exact_match", "f1")

    def check(self):
        if self.options.max_answer_length < 1:
            raise ValueError("`max_answer_length` must be a positive integer. Received: "
                             f"max_answer_length={self.options.max_answer_length!r}")

    def read(self, path):
        from keraslm import data

        examples = []
        # read_file: a missing, empty or undecodable file is named with the
        # line and byte of the problem.
        for number, line in enumerate(data.read_file(path).split("\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise data.DataError(f"{path}:{number}: not valid JSON: {error.msg}")
            if not isinstance(record, dict):
                raise data.DataError(
                    f"{path}:{number}: expected a JSON object with question, context "
                    f"and answer. Received: {type(record).__name__}")
            missing = {"question", "context", "answer"} - set(record)
            if missing:
                raise data.DataError(
                    f"{path}:{number}: missing field(s) {sorted(missing)}; each "
                    f"line needs question, context and answer. Received keys: "
                    f"{sorted(record)}")
            for field in ("question", "context", "answer"):
                if not isinstance(record[field], str) or not record[field]:
                    raise data.DataError(
                        f"{path}:{number}: `{field}` must be a non-empty string. "
                        f"Received: {record[field]!r}")
            start = record.get("answer_start")
            if start is None:
                start = record["context"].find(record["answer"])
            if (not isinstance(start, int) or isinstance(start, bool) or start < 0
                    or record["context"][start:start + len(record["answer"])]
                    != record["answer"]):
                raise data.DataError(
                    f"{path}:{number}: the answer {record['answer']!r} is not a "
                    f"span of the context at answer_start={start!r}.")
            examples.append((record["question"], record["context"], start,
                             record["answer"]))
        if not examples:
            raise data.DataError(f"{path}: no QA examples found.")
        return examples

    def split(self, examples):
        from keraslm import data

        return data.train_validation_split(
            examples, validation_fraction=self.config.validation_fraction,
            seed=self.config.seed, group_duplicates=False)

    def texts(self, examples):
        return [q for q, *_ in examples] + [c for _, c, *_ in examples]

    def size(self, examples):
        return len(examples)

    def encode(self, examples, tokenizer):
        """`(token_ids (n, length), spans (n, 2))`, tokenized in batches.

        The context is tokenized in three parts (before, inside and after the
        answer) so the answer's token positions are exact; examples whose
        answer ends beyond `sequence_length` are left out with a warning.
        """
        import numpy as np

        from keraslm import data

        length = self.config.sequence_length
        parts = [[], [], [], []]  # questions, before, answers, after
        for question, context, start, answer in examples:
            end = start + len(answer)
            for part, value in zip(parts, (question, context[:start], answer,
                                           context[end:])):
                part.append(value)
        # One batched tokenizer call per part (empty strings give no ids).
        question_ids, before_ids, answer_ids, after_ids = (
            data.tokenize_texts(tokenizer, part).to_list() for part in parts)
        rows = np.zeros((len(examples), length), "int32")
        spans = np.zeros((len(examples), 2), "int32")
        kept = 0
        for question, before, inside, after in zip(question_ids, before_ids, answer_ids,
                                                   after_ids):
            first = 2 + len(question) + len(before)
            last = first + len(inside) - 1
            if last >= length or not inside:
                continue
            ids = ([tokenizer.cls_id] + question + [tokenizer.sep_id] + before + inside
                   + after + [tokenizer.sep_id])[:length]
            rows[kept, :len(ids)] = ids
            spans[kept] = (first, last)
            kept += 1
        if kept < len(examples):
            warnings.warn(f"{len(examples) - kept} QA examples whose answer ends beyond "
                          f"sequence_length={length} tokens were left out.",
                          data.TruncationWarning, stacklevel=2)
        if not kept:
            raise data.DataError(
                f"No QA example fits in sequence_length={length} tokens. Raise "
                f"`sequence_length`.")
        return rows[:kept], spans[:kept]

    def dataset(self, examples, tokenizer, training):
        import tensorflow as tf

        from keraslm import data

        token_ids, spans = self.encode(examples, tokenizer)
        dataset = tf.data.Dataset.from_tensor_slices((token_ids, spans))
        if training:
            dataset = dataset.shuffle(len(token_ids), seed=self.config.seed)
        dataset = dataset.batch(self.config.batch_size).prefetch(tf.data.AUTOTUNE)
        return data.TaskData(dataset, num_examples=len(token_ids),
                             batch_size=self.config.batch_size)

    def loss_arguments(self):
        return {}

    def evaluate(self, model, examples, tokenizer, loss=None):
        from keraslm import registry

        loss = loss or self.default_loss_object()
        token_ids, spans = self.encode(examples, tokenizer)
        logits = model.predict(token_ids, batch_size=self.config.batch_size, verbose=0)
        results = {"loss": float(loss(spans, logits)), "examples": len(spans)}
        for name in ("span_exact_match", "span_f1"):
            metric = registry.metrics.build(
                name, max_answer_length=self.options.max_answer_length)
            metric.update_state(spans, logits)
            results[name.replace("span_", "")] = float(metric.result())
        return results

    def sample_inputs(self, examples, tokenizer, shapes=((1, 9), (3, 33))):
        import numpy as np

        token_ids, _ = self.encode(examples[:64], tokenizer)
        batches = []
        for batch, length in shapes:
            rows = np.resize(token_ids, (batch, token_ids.shape[1]))[:, :length]
            batches.append(np.ascontiguousarray(rows))
        return batches
