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

from keraslm.tasks.base import token_metrics
from keraslm.tasks.lm import TextTask


@dataclasses.dataclass
class MaskedLanguageModelOptions:
    split: str = "line"              # .txt documents: "line" or "block" (blank-line separated)
    mask_rate: float = 0.15          # share of the tokens selected for prediction
    mask_token_rate: float = 0.8     # of the selected tokens, the share replaced by [MASK]
    random_token_rate: float = 0.1   # of the selected tokens, the share replaced by a random token


class MaskedLanguageModelTask(TextTask):
    name = "mlm"
    description = "Masked language modelling (BERT pretraining); masked-token accuracy."
    Options = MaskedLanguageModelOptions
    default_model = "transformer_encoder"
    head = "masked_lm"
    init_from_tasks = ("mlm",)
    metrics = ("perplexity", "accuracy")

    def check(self):
        super().check()
        options = self.options
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
