"""Data-driven `"auto"` defaults: `keraslm train --task T --train F` and nothing else.

When neither `steps` nor `epochs` is given (and `auto` is on, the default),
the run is sized from its data and a time budget before training:

- a default `time_budget` (`DEFAULT_BUDGET`) when none is given;
- the tokenizer and its vocabulary size from the corpus size;
- the model (and its shape for the budget), learning rate, schedule, batch
  size and validation interval: each task's `Task.auto_defaults`;
- the sequence length from the token lengths of the training texts (a high
  percentile, capped by the model; `Task.auto_sequence_length`), once the
  tokenizer is trained;
- class weights for imbalanced labels (classify), early stopping on the
  validation loss with the best checkpoint restored.

Every choice names the options that override it (`Choice.given_by`): one of
them given, the choice is skipped and the user's values stand. `--no-auto`
(`auto=False`), `steps` or `epochs` give the fixed defaults of
`TrainConfig`. The choices are printed in one block before training and
written to `config.json` (`derived.auto`: what was chosen and why).

Example:

```python
import keraslm

result = keraslm.train(task="classify", train="reviews/train.csv",
                       test="reviews/test.csv", time_budget="2m")
result.config.model_options          # the chosen model shape
```
"""

import dataclasses
import itertools
import math

# The whole run when no steps, epochs or time budget are given.
DEFAULT_BUDGET = "10m"
# Texts whose statistics are gathered (the corpus beyond is not read twice).
SAMPLE_TEXTS = 20000
# Texts encoded to measure token lengths.
LENGTH_SAMPLE = 2000
# Share of the training texts that fit `sequence_length` untruncated.
LENGTH_PERCENTILE = 95


@dataclasses.dataclass
class Choice:
    """One automatic choice.

    Attributes:
        name: str. What it decides (`"model"`, `"tokenizer"`, ...).
        values: dict. `TrainConfig` fields and their chosen values.
        why: str. One line: the reason, from the data or the budget.
        given_by: tuple of str. Fields any of which, given by the user,
            cancel this choice (default: the keys of `values`).
        when_given: tuple of str. If not empty, the choice applies only when
            the user gave one of these fields (early stopping for a model
            the user chose rather than the task's).
    """

    name: str
    values: dict
    why: str
    given_by: tuple = ()
    when_given: tuple = ()

    def blockers(self):
        return tuple(self.given_by) or tuple(self.values)


@dataclasses.dataclass
class Statistics:
    """What the defaults are decided from (a sample of up to `SAMPLE_TEXTS`
    training texts; `examples` and `characters` count them all when known).

    Attributes:
        examples: int. Training examples (texts for lm).
        characters: int. Characters of the training texts.
        words: int. Whitespace-separated words.
        distinct_words: int. Distinct (lowercased) words.
        repeated_words: int. Distinct words seen at least twice.
        sampled: int. Texts the word counts are over.
    """

    examples: int
    characters: int
    words: int
    distinct_words: int
    repeated_words: int
    sampled: int


def given_fields(config):
    """The fields the user set: those recorded by `TrainConfig.from_dict`
    (`_given`), and any whose value differs from its default."""
    given = set(getattr(config, "_given", ()) or ())
    for field in dataclasses.fields(type(config)):  # a TrainConfig
        default = (field.default_factory() if field.default_factory
                   is not dataclasses.MISSING else field.default)
        if getattr(config, field.name) != default:
            given.add(field.name)
    return given - {"verbose"}


def is_active(config, resume=False):
    """Whether the automatic defaults apply: `auto` on, not a resumed run
    (its configuration is already resolved), no `steps` and no `epochs`."""
    if resume or not config.auto:
        return False
    given = given_fields(config)
    return config.steps is None and "epochs" not in given


def statistics(task, examples):
    """`Statistics` of the training examples."""
    from keraslm import data

    texts = task.texts(examples)
    counts = {}
    words = characters = sampled = 0
    for text in itertools.islice(texts, SAMPLE_TEXTS):
        sampled += 1
        characters += len(text)
        for word in text.lower().split():
            words += 1
            counts[word] = counts.get(word, 0) + 1
    if isinstance(examples, data.Corpus) and examples.known_length is None:
        import os

        total_bytes = sum(os.path.getsize(path) for path in examples.files)
        scale = max(total_bytes / max(characters, 1), 1.0)
        examples_count = int(sampled * scale)
    else:
        examples_count = task.size(examples)
        scale = examples_count / max(sampled, 1)
    return Statistics(examples=examples_count, characters=int(characters * scale),
                      words=int(words * scale), distinct_words=len(counts),
                      repeated_words=sum(1 for c in counts.values() if c >= 2),
                      sampled=sampled)


def format_budget(seconds):
    from keraslm.training.budget import format_duration

    return format_duration(seconds)


def budget_seconds(config):
    from keraslm.training.budget import parse_duration

    return parse_duration(config.time_budget or DEFAULT_BUDGET)


def decide(config, task, examples):
    """Applies the automatic choices made before the tokenizer trains.

    Returns:
        `(applied, skipped)`: lists of `Choice`; the applied ones are set on
        `config`; a skipped one lists the user's options that override it.
    """
    given = given_fields(config)
    config._auto_given = given  # before any choice changes a field
    choices = []
    if config.time_budget is None:
        choices.append(Choice(
            "time_budget", {"time_budget": DEFAULT_BUDGET},
            "no --steps, --epochs or --time-budget: the run (data, training, "
            "evaluation) is fitted to this budget"))
    stats = statistics(task, examples)
    choices += task.auto_defaults(examples, stats, budget_seconds(config))
    applied, skipped = [], []
    for choice in choices:
        if config.init_from and choice.name in ("tokenizer", "model"):
            skipped.append(dataclasses.replace(
                choice, why="from the --init-from run"))
            continue
        if choice.when_given and not set(choice.when_given) & given:
            continue
        blocked = [name for name in choice.blockers() if name in given]
        if blocked:
            skipped.append(dataclasses.replace(
                choice, why="given: " + ", ".join(f"--{b.replace('_', '-')}"
                                                   for b in blocked)))
            continue
        for field, value in choice.values.items():
            if isinstance(value, dict):  # the user's keys win
                setattr(config, field, {**value, **getattr(config, field)})
            elif field not in given:  # a field the user gave stands
                setattr(config, field, value)
        if choice.name == "model":
            config._auto_model = True
        if "epochs" in choice.values:
            config._auto_epochs = True  # with the budget: at most these passes
        applied.append(choice)
    cap = model_cap(config)
    if "sequence_length" not in given and cap and config.sequence_length > cap:
        config.sequence_length = cap  # for now: chosen once the tokenizer is known
    if config.time_budget is not None and not isinstance(config.time_budget, float):
        config.time_budget = budget_seconds(config)
    return applied, skipped, stats


def model_cap(config):
    """The longest sequence the chosen model takes, or None (no positions)."""
    from keraslm.models import PRESETS

    if config.model_name == "lstm_lm":
        return None
    preset = PRESETS[config.model_name].get(config.preset or "", {})
    return config.model_options.get("max_sequence_length",
                                    preset.get("max_sequence_length"))


def token_lengths(task, examples, tokenizer):
    """Token counts of up to `LENGTH_SAMPLE` training texts, evenly spread."""
    texts = task.texts(examples)
    if not isinstance(texts, list):  # a stream: its first texts
        texts = list(itertools.islice(texts, SAMPLE_TEXTS))
    step = max(len(texts) // LENGTH_SAMPLE, 1)  # spread over all (translate: both sides)
    sample = texts[::step]
    return [len(ids) for start in range(0, len(sample), 512)
            for ids in tokenizer.encode(sample[start:start + 512])]  # batched


def percentile(values, share):
    ordered = sorted(values)
    if not ordered:
        return 0
    index = min(int(math.ceil(share / 100 * len(ordered))) - 1, len(ordered) - 1)
    return ordered[max(index, 0)]


def length_choice(lengths, cap, extra=2, multiple=8, floor=16):
    """`(sequence_length, why)`: the `LENGTH_PERCENTILE`th percentile of
    `lengths` plus `extra` special tokens, rounded up to a multiple of
    `multiple`, at least `floor`, at most `cap`."""
    high = percentile(lengths, LENGTH_PERCENTILE) + extra
    length = max(floor, int(math.ceil(high / multiple) * multiple))
    why = (f"{LENGTH_PERCENTILE}% of {len(lengths):,} sampled training texts have "
           f"at most {high - extra} tokens (+{extra} special)")
    if cap is not None and length > cap:
        why += f"; capped by the model's {cap} positions"
        length = cap
    truncated = sum(1 for n in lengths if n + extra > length) / max(len(lengths), 1)
    return length, f"{why}; {truncated:.0%} truncated"


def decide_sequence_length(config, task, examples, tokenizer):
    """The sequence-length choice, once the tokenizer is known (None when
    the user gave `sequence_length`). Sets `config.sequence_length` and, for
    a model shape chosen here, its `max_sequence_length`."""
    given = getattr(config, "_auto_given", None)
    if "sequence_length" in (given_fields(config) if given is None else given):
        return None
    cap = model_cap(config)
    value, why = task.auto_sequence_length(
        lambda: token_lengths(task, examples, tokenizer), cap)
    config.sequence_length = value
    options = config.model_options
    if options.get("max_sequence_length") is not None and getattr(
            config, "_auto_model", False):
        # A shape chosen here: positions for the chosen length, no more.
        options["max_sequence_length"] = value
    return Choice("sequence_length", {"sequence_length": value}, why)


def describe(applied, skipped, stats):
    """The block printed before training and stored in `config.json`."""
    return {
        "data": dataclasses.asdict(stats),
        "chosen": [{"name": c.name, "values": _plain(c.values), "why": c.why}
                   for c in applied],
        "kept": [{"name": c.name, "values": _plain(c.values), "why": c.why}
                 for c in skipped],
    }


def _plain(values):
    return {key: (dict(value) if isinstance(value, dict) else value)
            for key, value in values.items()}


def format_block(report):
    """Lines of the `[auto]` block."""
    stats = report["data"]
    lines = [f"[auto] data: {stats['examples']:,} training examples, "
             f"{stats['characters']:,} characters, {stats['distinct_words']:,} distinct "
             f"words ({stats['repeated_words']:,} seen twice or more) "
             f"(--no-auto: fixed defaults; any flag below overrides its choice)"]
    for entry in report["chosen"]:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in entry["values"].items())
        lines.append(f"[auto]   {entry['name']}: {shown}  ({entry['why']})")
    for entry in report["kept"]:
        lines.append(f"[auto]   {entry['name']}: yours ({entry['why']})")
    return lines


def _short(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={v}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def batch_size_choice(examples, largest=32, smallest=8, steps_per_epoch=40):
    """A power of two up to `largest`, small enough that an epoch has about
    `steps_per_epoch` steps on a small set."""
    size = largest
    while size > smallest and examples / size < steps_per_epoch:
        size //= 2
    return Choice("batch_size", {"batch_size": size},
                  f"{examples:,} examples: {math.ceil(examples / size)} steps an epoch")


def interval_choice(examples, batch_size, smallest=50, largest=500):
    """Validation (and early stopping) every half epoch, within bounds."""
    steps = int(min(max(examples / batch_size / 2, smallest), largest))
    return Choice("checkpoint_every", {"checkpoint_every": steps},
                  f"validate about every half epoch, between {smallest} and "
                  f"{largest} steps")


def early_stopping_choice(patience=5):
    return Choice("early_stopping", {"early_stopping": patience},
                  f"stop after {patience} validations without a lower validation "
                  f"loss; the best checkpoint becomes the final model")


def xla_choice():
    """`xla="fusible"` where this process can run it (TensorFlow started with
    the flags `import keraslm` adds), else no choice (None)."""
    from keraslm import _xla_flags

    if not _xla_flags.fusible_flags_active():
        return None
    return Choice("xla", {"xla": "fusible"},
                  "XLA fuses the element-wise ops, matrix products stay oneDNN: "
                  "about 1.5-2x faster steps on CPU than no XLA")


def subword_vocabulary(stats, smallest=1000, largest=16000, step=500):
    """A subword vocabulary the size of the corpus's repeated words."""
    size = int(min(max(stats.repeated_words, smallest), largest))
    size = max(smallest, size // step * step)
    return size, (f"{stats.repeated_words:,} distinct words repeat in the training "
                  f"texts; between {smallest:,} and {largest:,}")
