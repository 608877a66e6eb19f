"""The `mlm` task: BERT-style masked language modelling (pretraining).

Packs the text into `[CLS] ... [SEP]` windows, masks 15% of the tokens anew
every epoch (80% `[MASK]`, 10% a random token, 10% unchanged) and reports the
masked tokens' loss, perplexity and accuracy. An `mlm` run is the usual
starting point of `classify`, `tag` and `qa` runs (`--init-from`).

```bash
keraslm train --task mlm --train corpus.txt -o runs/mlm
keraslm train --task classify --train reviews.csv --init-from runs/mlm -o runs/cls
```
"""

import dataclasses

from keraslm.tasks.base import Task, token_metrics
from keraslm.tasks.lm import TABLE_EXTENSIONS


@dataclasses.dataclass
class MaskedLanguageModelOptions:
    split: str = "line"              # .txt documents: "line" or "block" (blank-line separated)
    mask_rate: float = 0.15          # share of the tokens selected for prediction
    mask_token_rate: float = 0.8     # of the selected tokens, the share replaced by [MASK]
    random_token_rate: float = 0.1   # of the selected tokens, the share replaced by a random token


class MaskedLanguageModelTask(Task):
    name = "mlm"
    description = "Masked language modelling (BERT pretraining); masked-token accuracy."
    Options = MaskedLanguageModelOptions
    formats = ("txt", "csv", "tsv", "jsonl")
    default_model = "transformer_encoder"
    head = "masked_lm"
    init_from_tasks = ("mlm",)
    metrics = ("perplexity", "accuracy")

    def check(self):
        options = self.options
        if options.split not in ("line", "block"):
            raise ValueError(f"`split` must be 'line' or 'block'. "
                             f"Received: split={options.split!r}")
        if not 0 < options.mask_rate < 1:
            raise ValueError(f"`mask_rate` must be in (0, 1). "
                             f"Received: mask_rate={options.mask_rate!r}")
        for name in ("mask_token_rate", "random_token_rate"):
            if not 0 <= getattr(options, name) <= 1:
                raise ValueError(f"`{name}` must be in [0, 1]. "
                                 f"Received: {name}={getattr(options, name)!r}")
        if options.mask_token_rate + options.random_token_rate > 1:
            raise ValueError(
                "`mask_token_rate + random_token_rate` must be at most 1. Received: "
                f"mask_token_rate={options.mask_token_rate}, "
                f"random_token_rate={options.random_token_rate}")

    def read(self, path):
        from keraslm import data

        if self.options.split == "line" and not str(path).endswith(TABLE_EXTENSIONS):
            return data.read_text(path, split="line", keep_empty=True)
        return data.read_examples(path, text_column=self.config.text_column,
                                  split=self.options.split)

    def split(self, examples):
        from keraslm import data

        return data.train_validation_split(
            examples, validation_fraction=self.config.validation_fraction,
            seed=self.config.seed, group_duplicates=False)

    def texts(self, examples):
        return examples

    def dataset(self, examples, tokenizer, training):
        from keraslm import data

        return self._model_inputs(data.masked_lm_dataset(
            examples, tokenizer, sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed, mask_rate=self.options.mask_rate,
            mask_token_rate=self.options.mask_token_rate,
            random_token_rate=self.options.random_token_rate))

    def evaluate(self, model, examples, tokenizer, loss=None):
        return token_metrics(model, self.dataset(examples, tokenizer, False),
                             "masked_tokens", loss)
