"""The `lm` task: causal language modelling on plain text.

Reads `.txt` (a document per line, or per blank-line block with `--split
block`) or a table's text column, packs the token stream into windows that
move every epoch, trains a causal LM and reports loss, perplexity, token
accuracy and bits per character (total nats over every character of the
file, so the figure does not depend on the tokenizer).

```bash
keraslm train --task lm --train train.txt --valid valid.txt --tokenizer character \
    --eval-stride 64 -o runs/lm
```
"""

import dataclasses
import math

from keraslm.tasks.base import Task, token_metrics

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl")


@dataclasses.dataclass
class LanguageModelOptions:
    split: str = "line"              # .txt documents: "line" or "block" (blank-line separated)
    random_offsets: bool = True      # move the window boundaries every epoch (--no-random-offsets: fixed windows)
    eval_stride: int | None = None   # evaluate windows every N tokens, the rest context; None: sequence_length


class TextTask(Task):
    """What the text-only tasks (`lm`, `mlm`) share: reading plain text or a
    table's text column, the `split` option, a split by line."""

    formats = ("txt", "csv", "tsv", "jsonl")

    def check(self):
        if self.options.split not in ("line", "block"):
            raise ValueError(f"`split` must be 'line' or 'block'. "
                             f"Received: split={self.options.split!r}")

    #: Whether `read_files` may return a streamed `Corpus` (lm) rather than a list.
    streams = False

    def read(self, path):
        from keraslm import data
        from keraslm.data.sources import base_extension

        if self.options.split == "line" and base_extension(path) not in TABLE_EXTENSIONS:
            # Empty lines are text too: each is one end-of-line to predict, so
            # bits per character covers every character of the file.
            return data.read_text(path, split="line", keep_empty=True)
        return data.read_examples(path, text_column=self.config.text_column,
                                  split=self.options.split)

    def read_files(self, spec):
        """A file as a list of texts; a directory, glob or `.gz` file as a
        `keraslm.data.Corpus` streamed from disk when the task trains from a
        stream (`lm`), else joined into a list."""
        from keraslm import data
        from keraslm.data.sources import TEXT_EXTENSIONS, base_extension, is_multi_file

        if not is_multi_file(spec):
            return self.read(spec)
        files = data.expand_paths(spec)
        plain = all(base_extension(path) in TEXT_EXTENSIONS for path in files)
        corpus = data.Corpus(spec, split=self.options.split,
                             text_column=self.config.text_column,
                             keep_empty=self.options.split == "line" and plain)
        return corpus if self.streams else list(corpus)

    def split(self, examples):
        from keraslm import data

        if isinstance(examples, data.Corpus):
            return examples.split(self.config.validation_fraction, self.config.seed)
        return data.train_validation_split(
            examples, validation_fraction=self.config.validation_fraction,
            seed=self.config.seed, group_duplicates=False)

    def texts(self, examples):
        return examples


class LanguageModelTask(TextTask):
    name = "lm"
    description = "Causal language modelling; perplexity, bits per character."
    Options = LanguageModelOptions
    default_model = "transformer_lm"
    head = "causal_lm"
    decodes = True
    init_from_tasks = ("lm",)
    metrics = ("perplexity", "accuracy", "bits_per_character")
    streams = True

    def check(self):
        super().check()
        stride = self.options.eval_stride
        if stride is not None and not 1 <= stride <= self.config.sequence_length:
            raise ValueError(f"`eval_stride` must be an integer in [1, sequence_length="
                             f"{self.config.sequence_length}] or None. "
                             f"Received: eval_stride={stride!r}")

    def auto_defaults(self, examples, statistics, seconds):
        """The `keraslm quickstart` recipe, sized by the budget.

        Characters for a corpus under 2M characters, else a lossless
        SentencePiece unigram model of 4,096 pieces (8,192 above 50M
        characters) learned from a sample of 50,000 lines; windows of 64
        tokens (128 characters), batches of 32, XLA `"fusible"`, a peak
        learning rate of 4e-3 with warm-up and cosine decay; the budget picks
        the steps. A Transformer LM of 2 layers d128 (4 heads, ff 512) from 2
        minutes, 2 layers d64 at 1e-2 under 2 minutes (windows of 64).

        Measured on Shakespeare (4.5M characters, 2 cores): 2 layers d128
        for a fixed 2,800 steps gave 2.120 bits/char on valid.txt and 2.188
        on test.txt; a 10-minute budget (113 ms a step at a load of 0.1:
        3,800 steps planned; other jobs then stopped it at 2,600) 2.169 on
        test.txt, where xz gives 2.507. On a 147k-character slice (characters,
        a 90 s budget scaled to 169 s by a load of 3.8, 400 steps) 3.76
        against xz's 2.87: small corpora are not met yet.
        """
        from keraslm.training import auto

        choices = super().auto_defaults(examples, statistics, seconds)
        if statistics.characters < 2_000_000:
            tokenizer = {"tokenizer": "character", "vocabulary_size": 1000}
            why = f"{statistics.characters:,} characters (under 2M): characters"
        else:
            size = 4096 if statistics.characters < 50_000_000 else 8192
            # Lossless: no whitespace is normalized away, so bits per
            # character scores every character of the text.
            tokenizer = {"tokenizer": "sentencepiece", "vocabulary_size": size,
                         "tokenizer_options": {"input_sentence_size": 50_000,
                                               "normalization": "identity",
                                               "remove_extra_whitespaces": False}}
            why = (f"{statistics.characters:,} characters: a lossless SentencePiece "
                   f"unigram model of {size:,} pieces from a sample of 50,000 lines")
        choices[0] = auto.Choice("tokenizer", tokenizer, why,
                                 given_by=("tokenizer", "vocabulary_size",
                                           "tokenizer_options"))
        if seconds < 120:  # a few hundred steps: small and fast ones
            shape = {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                     "intermediate_dim": 256}
            learning_rate = 1e-2
        else:
            shape = {"num_layers": 2, "num_heads": 4, "hidden_dim": 128,
                     "intermediate_dim": 512}
            learning_rate = 4e-3
        choices.append(auto.Choice(
            "model", {"model": "transformer_lm", "preset": None,
                      "model_options": {**shape, "max_sequence_length": 128},
                      "learning_rate": learning_rate},
            f"a {shape['num_layers']}-layer d{shape['hidden_dim']} Transformer LM for a "
            f"{auto.format_budget(seconds)} budget",
            given_by=("model", "preset", "model_options")))
        xla = auto.xla_choice()
        if xla is not None:
            choices.append(xla)
        # The stream is cut into windows: validate every 50-200 steps, so
        # that the budget's guard can stop between intervals (one 250-step
        # interval of a 4-layer d192 model on a machine at a load of 10
        # overran a 10-minute budget by 30%).
        for index, choice in enumerate(choices):
            if choice.name == "batch_size":
                choices[index] = auto.Choice(
                    "batch_size", {"batch_size": 32}, "32 windows a step")
            if choice.name == "checkpoint_every":
                steps = 50 if seconds < 300 else 200
                choices[index] = auto.Choice(
                    "checkpoint_every", {"checkpoint_every": steps},
                    f"validate every {steps} steps")
        return choices

    def auto_sequence_length(self, lengths, cap):
        """Windows of a packed stream, whatever the line lengths: 64 tokens,
        128 characters (64 under a 2-minute budget), at most the model's
        positions."""
        from keraslm.training import auto

        window = 64
        if self.config.tokenizer in ("character", "byte") and \
                auto.budget_seconds(self.config) >= 120:
            window = 128
        length = min(window, cap or window)
        return length, (f"windows of {length} tokens cut from the packed stream "
                        f"(line lengths do not bound an LM's context)")

    def prepare_training_data(self, examples, tokenizer, cache_directory, progress=None):
        from keraslm import data

        if not isinstance(examples, data.Corpus):
            return examples
        return data.TokenCache.build(examples, tokenizer, cache_directory,
                                     progress=progress)

    def dataset(self, examples, tokenizer, training, stride=None):
        from keraslm import data

        if isinstance(examples, data.Corpus):  # evaluation data: small enough to hold
            examples = list(examples)
        return self._model_inputs(data.causal_lm_dataset(
            examples, tokenizer, sequence_length=self.config.sequence_length,
            batch_size=self.config.batch_size, shuffle=training,
            seed=self.config.seed,
            random_offsets=training and self.options.random_offsets,
            stride=None if training else stride))

    def build_backbone(self, base):
        return base  # a TransformerLM / LSTMLM already is a causal LM

    def evaluate(self, model, examples, tokenizer, loss=None):
        # Scored with `eval_stride`: every token once, with at least
        # `sequence_length - eval_stride` tokens of context after the first window.
        metrics = token_metrics(
            model, self.dataset(examples, tokenizer, False, self.options.eval_stride),
            "tokens", loss)
        # Each text is followed by an end-of-text token, the newline it
        # stands for: that character is counted too.
        characters = sum(len(t) + 1 for t in examples)  # one pass, also over a Corpus
        total_nll = metrics["cross_entropy"] * metrics["tokens"]
        metrics["bits_per_character"] = total_nll / characters / math.log(2)
        metrics["characters"] = characters
        return metrics

    def generate_options(self):
        return {"newline_at_eos": self.options.split == "line"}
