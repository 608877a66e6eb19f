"""The `translate` task: sequence to sequence (translation, summarization).

Reads `.tsv` source/target pairs, trains an encoder-decoder Transformer with
teacher forcing and reports the target tokens' loss, perplexity and
accuracy, and scores of decoded validation sources: BLEU and chrF by
default (as sacrebleu), ROUGE-1/2/L for summarization (`--scores
bleu,chrf,rouge`; as rouge-score); the translations are written to
`translations.txt` in the run directory.

```bash
keraslm train --task translate --train bible/train.tsv --valid bible/valid.tsv -o runs/mt
keraslm train --task translate --train news.tsv --scores rouge -o runs/summaries
```
"""

import dataclasses

from keraslm.tasks.base import Task, token_metrics


@dataclasses.dataclass
class TranslationOptions:
    source_column: int | None = None  # TSV column of the source (None: the first of two)
    target_column: int | None = None  # TSV column of the target (None: the second of two)
    decode_examples: int = 200  # sources decoded (greedy) for the scores in evaluation; 0: none
    scores: str = "bleu,chrf"  # scores of the decoded outputs: any of bleu, chrf, rouge


#: The scores `scores=` can name.
SCORES = ("bleu", "chrf", "rouge")


class TranslationTask(Task):
    name = "translate"
    description = "Sequence to sequence (source<TAB>target); target-token accuracy."
    formats = ("tsv",)
    default_model = "seq2seq_transformer"
    head = "seq2seq_lm"
    model_inputs = ("encoder_token_ids", "decoder_token_ids")
    metrics = ("perplexity", "accuracy", "bleu", "chrf")
    Options = TranslationOptions
    decodes = True
    default_sampler = "greedy"
    generates_batches = True

    def generate(self, model, tokenizer, prompt, max_new_tokens, **options):
        """The translation of `prompt` (a string, or a list of them decoded
        as batches); `options` are those of `keraslm.generation.translate`
        (greedy by default; `num_beams`, `no_repeat_ngram_size`, `stop`, ...)."""
        from keraslm import generation

        single = isinstance(prompt, str)
        targets = generation.translate(model, tokenizer, [prompt] if single else prompt,
                                       max_new_tokens, **options)
        return targets[0] if single else targets

    def auto_defaults(self, examples, statistics, seconds):
        """One SentencePiece vocabulary for both sides, sized from the
        corpus (1,000 to 8,000); an encoder-decoder of 2+2 layers d128 for
        budgets under 5 minutes, 3+3 layers d256 otherwise."""
        from keraslm.training import auto

        choices = super().auto_defaults(examples, statistics, seconds)
        size, why = auto.subword_vocabulary(statistics, largest=8000)
        choices[0] = auto.Choice("tokenizer", {"tokenizer": "sentencepiece",
                                               "vocabulary_size": size},
                                 f"SentencePiece shared by source and target: {why}",
                                 given_by=("tokenizer", "vocabulary_size",
                                           "tokenizer_options"))
        if seconds < 300:
            shape = {"num_layers": 2, "num_heads": 4, "hidden_dim": 128,
                     "intermediate_dim": 512}
        else:
            shape = {"num_layers": 3, "num_heads": 4, "hidden_dim": 256,
                     "intermediate_dim": 1024}
        choices.append(auto.Choice(
            "model", {"model": "seq2seq_transformer", "preset": None,
                      "model_options": {**shape, "max_sequence_length": 256},
                      "learning_rate": 2e-3},
            f"a {shape['num_layers']}+{shape['num_layers']}-layer d{shape['hidden_dim']} "
            f"encoder-decoder for a {auto.format_budget(seconds)} budget",
            given_by=("model", "preset", "model_options")))
        return choices

    def read(self, path):
        from keraslm import data

        return data.read_pairs(path, source_column=self.options.source_column,
                               target_column=self.options.target_column)

    def split(self, examples):
        from keraslm import data

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
        from keraslm import data

        return self._model_inputs(data.seq2seq_dataset(
            examples.sources, examples.targets, tokenizer,
            source_length=self.config.sequence_length,
            target_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed))

    def build_backbone(self, base):
        return base  # a Seq2SeqTransformer is the whole model

    def check(self):
        count = self.options.decode_examples
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"`decode_examples` must be an integer >= 0 (0: no "
                             f"scores). Received: decode_examples={count!r}")
        names = [name.strip() for name in str(self.options.scores).split(",") if name.strip()]
        unknown = sorted(set(names) - set(SCORES))
        if unknown or not names:
            raise ValueError(f"`scores` must be a comma-separated list of {', '.join(SCORES)}. "
                             f"Received: scores={self.options.scores!r}")

    def evaluate(self, model, examples, tokenizer, loss=None):
        """Teacher-forced loss, perplexity and accuracy of the target tokens;
        then the first `decode_examples` sources are translated (greedy) and
        scored against their targets with sacrebleu-compatible BLEU and chrF
        (`keraslm.evaluation`). The translations, one per line, are left in
        `self.evaluation_files["translations.txt"]` (written into the run
        directory by training and `keraslm evaluate`)."""
        from keraslm import evaluation, generation

        metrics = token_metrics(model, self.dataset(examples, tokenizer, False),
                                "target_tokens", loss)
        count = min(self.options.decode_examples, len(examples.sources))
        if count:
            sources, references = examples.sources[:count], examples.targets[:count]
            length = min(self.config.sequence_length, model.max_sequence_length - 1)
            hypotheses = generation.translate(model, tokenizer, sources, length,
                                              max_source_length=self.config.sequence_length)
            names = {name.strip() for name in self.options.scores.split(",")}
            if "bleu" in names:
                metrics["bleu"] = evaluation.bleu(hypotheses, references)["score"]
            if "chrf" in names:
                metrics["chrf"] = evaluation.chrf(hypotheses, references)["score"]
            if "rouge" in names:
                rouge = evaluation.rouge(hypotheses, references)
                metrics.update({name: rouge[name]["fmeasure"] for name in rouge})
            metrics["decoded_examples"] = count
            self.evaluation_files = {
                "translations.txt": "".join(h.replace("\n", " ") + "\n" for h in hypotheses)}
        return metrics
