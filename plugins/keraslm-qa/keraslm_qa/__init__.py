"""keraslm-qa: extractive question answering as an external keraslm plugin.

The whole task lives here, outside the core: without this plugin `--task qa`
is an unknown task. Installing it registers:

- task `qa` (`keraslm_qa.task.QuestionAnsweringTask`): reading JSON lines
  `{"question", "context", "answer"}`, batched encoding of
  `[CLS] question [SEP] context [SEP]` with the answer's token span, its
  option `max_answer_length` (`--max-answer-length`), and evaluation by
  exact match and F1;
- task head `qa_span`: start/end logits over the context tokens, with padding
  positions masked out;
- loss `span`: cross-entropy of the start and of the end position;
- metrics `span_exact_match` and `span_f1`: SQuAD-style scores over token
  positions, on spans decoded with `best_spans` (end >= start, at most
  `max_answer_length` tokens).

Example:

```bash
keraslm train --task qa --train qa.jsonl --init-from runs/mlm -o runs/qa
```

```python
import keraslm

head = keraslm.registry.task_heads.build("qa_span", backbone=backbone)
loss = keraslm.registry.losses.build("span")
```
"""

import keraslm

__version__ = "0.1.0"


@keraslm.hookimpl
def register_tasks(register):
    register("qa", "keraslm_qa.task:QuestionAnsweringTask",
             description="Extractive question answering; exact match and F1 of spans.")


@keraslm.hookimpl
def register_task_heads(register):
    register("qa_span", "keraslm_qa.head:qa_span_model", task="qa",
             description="Extractive QA: start/end logits over context tokens.")


@keraslm.hookimpl
def register_losses(register):
    register("span", "keraslm_qa.losses:SpanLoss",
             description="Mean cross-entropy of answer start and end positions.")


@keraslm.hookimpl
def register_metrics(register):
    register("span_exact_match", "keraslm_qa.metrics:SpanExactMatch",
             description="Share of answers whose decoded span is exactly right.")
    register("span_f1", "keraslm_qa.metrics:SpanF1",
             description="Token-overlap F1 of decoded and gold spans (SQuAD).")
