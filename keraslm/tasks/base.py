"""`Task`: everything that differs between tasks, in one class per task.

A task turns files into `tf.data` batches for its head, names its default
model, head and loss, evaluates a model on examples with its metrics, and
says what `generate` and `export` mean for it. The trainer
(`keraslm.training.run`), the commands and the exporters drive every task
through this interface alone, so a task from a plugin has the same power as
a built-in one. Tasks register through the `register_tasks` hook:

```python
import dataclasses

import keraslm
from keraslm.tasks import ClassificationTask


class SentimentTask(ClassificationTask):
    name = "sentiment"
    description = "Positive/negative reviews; accuracy, macro F1."

    @dataclasses.dataclass
    class Options:
        neutral_label: str = "neutral"   # the label dropped before training


@keraslm.hookimpl
def register_tasks(register):
    register("sentiment", SentimentTask, description=SentimentTask.description)
```

Then `keraslm train --task sentiment --neutral-label meh ...` works, and
`keraslm.testing.run_task_test(SentimentTask, train=..., valid=...)` checks
it end to end. Keep a task module light (import TensorFlow and
`keraslm.data` inside methods): `keraslm train --help` imports every
installed task to list its options.
"""

import dataclasses
import math
import os

from keraslm._options import options_from_dict

IGNORE_INDEX = -100
"""The label of positions no loss or metric counts: the value of
`keraslm.text.special_tokens.IGNORE_INDEX`, repeated here so that listing the
tasks does not import TensorFlow (a test checks that they agree)."""


@dataclasses.dataclass
class NoOptions:
    """A task without options of its own."""


class Task:
    """Base class of every task; subclasses fill in the task-specific parts.

    Class attributes (declarations the trainer and the commands read):

    - `name`: str. The `--task` value; equals the registered name.
    - `description`: str. One line for listings.
    - `Options`: a dataclass of the task's own options, a `# comment` per
      field (the help text). They become `keraslm train` flags, keys of
      `[task_options]` (or top-level keys) in `run.toml`, and keyword
      arguments of `keraslm.train`; `self.options` holds the resolved values.
    - `formats`: tuple of str. The file formats `read` takes.
    - `default_model`: str. A builder in `keraslm.models.BUILDERS`.
    - `head`: str. A name in `keraslm.registry.task_heads`.
    - `default_loss`: str. A name in `keraslm.registry.losses` (`--loss auto`).
    - `model_inputs`: tuple of str. The model's input names, in order; one
      name means the model takes a single tensor.
    - `decodes`: bool. Whether `keraslm generate` applies (`generate`: it
      continues text, or translates it).
    - `default_sampler`: str. The sampler `keraslm generate` uses when
      none is given (`"top_k"`; `"greedy"` for translation).
    - `generates_batches`: bool. Whether an overridden `generate` takes a
      list of prompts (the base `generate` does); otherwise `keraslm
      generate --input` calls it once per line.
    - `init_from_tasks`: tuple of str. Tasks whose runs can be this task's
      starting point (`--init-from`): their backbone and tokenizer are taken
      and this task's head is put on top.
    - `metrics`: tuple of str. The metrics `evaluate` reports, besides `loss`.
    """

    name = ""
    description = ""
    Options = NoOptions
    formats = ()
    default_model = "transformer_encoder"
    head = ""
    default_loss = "masked_sparse_categorical_crossentropy"
    model_inputs = ("token_ids",)
    decodes = False
    default_sampler = "top_k"
    init_from_tasks = ()
    metrics = ()

    def __init__(self, config):
        self.config = config
        self.options = self.resolve_options(getattr(config, "task_options", {}) or {})
        self.label_vocabulary = None

    # -- options ------------------------------------------------------------
    @classmethod
    def option_names(cls):
        return [f.name for f in dataclasses.fields(cls.Options)]

    @classmethod
    def resolve_options(cls, values, source=None):
        """`Options` from a dict, unknown keys and wrong types refused."""
        options = options_from_dict(cls.Options, values,
                                    source or f"the options of task '{cls.name}'")
        return options

    def check(self):
        """Checks the options against the rest of the configuration.

        Called before any data is read; raises ValueError naming the option,
        the value received and what is expected.
        """

    # -- data ---------------------------------------------------------------
    def read(self, path):
        """Reads one file into this task's examples."""
        raise NotImplementedError

    def read_files(self, spec):
        """The examples of a file, a directory or a glob (`--train`).

        Each file is read by `read` (`.gz` decompressed); several files'
        examples are joined in sorted file order. Tasks that can train from
        a stream (`lm`) return a `keraslm.data.Corpus` instead.
        """
        from keraslm.data.sources import expand_paths

        files = expand_paths(spec)
        if len(files) == 1:
            return self.read(files[0])
        return concatenate([self.read(path) for path in files], spec)

    def split(self, examples):
        """Deterministic `(train, validation)` split of one file's examples."""
        raise NotImplementedError

    def texts(self, examples):
        """Strings to train a tokenizer on."""
        raise NotImplementedError

    def size(self, examples) -> int:
        """Examples in `examples` (for the progress lines)."""
        return len(self.texts(examples))

    def prepare_training_data(self, examples, tokenizer, cache_directory, progress=None):
        """The training examples as `dataset` takes them, once the tokenizer
        is known: the identity, except for tasks that tokenize a streamed
        corpus to disk first (`lm` writes a `keraslm.data.TokenCache` under
        `cache_directory`)."""
        return examples

    def fit_labels(self, examples):
        """Builds the label vocabulary from a whole training file (before any
        validation split), for tasks with labels."""

    def check_labels(self, examples):
        """Raises for labels of `examples` (validation, test) that the
        training labels lack; called before the tokenizer trains. Tasks
        whose unseen labels are counted as errors instead (tag) keep this
        no-op."""

    def dataset(self, examples, tokenizer, training):
        """A `keraslm.data.TaskData` whose dataset yields `(inputs, labels)`
        batches: `inputs` as the model takes them (see `model_inputs`),
        labels `IGNORE_INDEX` where nothing is scored."""
        raise NotImplementedError

    def _model_inputs(self, task_data):
        """Gives a `keraslm.data` pipeline's `(inputs, labels)` batches the
        model's input form.

        The pipelines' `inputs` are a dict of exactly the model inputs; a
        model with one input (`model_inputs` of one name) takes that tensor
        alone, so it is unwrapped. Dicts pass through otherwise.
        """
        if len(self.model_inputs) == 1:
            (name,) = self.model_inputs
            task_data.dataset = task_data.dataset.map(lambda x, y: (x[name], y))
        return task_data

    # -- model --------------------------------------------------------------
    def build_backbone(self, base):
        """What the head is put on, from a freshly built model of `default_model`
        (or `--model`): by default its hidden states."""
        return base.hidden_states_model()

    def backbone_from_run(self, model, info):
        """What the head is put on, from the model of an `--init-from` run."""
        return hidden_states_of(model, info)

    def head_options(self):
        """Keyword arguments of the head besides `backbone`."""
        return dict(self.config.head_options)

    def loss_arguments(self):
        """Arguments the trainer offers the loss (passed where accepted)."""
        return {"ignore_class": IGNORE_INDEX, "from_logits": True}

    # -- automatic defaults ---------------------------------------------------
    def auto_defaults(self, examples, statistics, seconds):
        """The data-driven choices of a run with no `steps`/`epochs` (see
        `keraslm.training.auto`): a list of `keraslm.training.auto.Choice`,
        each setting `TrainConfig` fields, with the reason, and skipped when
        the user gave one of its fields.

        `examples` are the training examples (as `read_files` gave them),
        `statistics` a `keraslm.training.auto.Statistics` of them, `seconds`
        the time budget. This base gives a WordPiece
        vocabulary the size of the corpus's repeated words, the batch size,
        the validation interval and early stopping; tasks add their model.
        """
        from keraslm.training import auto

        size, why = auto.subword_vocabulary(statistics)
        batch = auto.batch_size_choice(statistics.examples)
        return [
            auto.Choice("tokenizer", {"tokenizer": "wordpiece", "vocabulary_size": size},
                        f"WordPiece: {why}",
                        given_by=("tokenizer", "vocabulary_size", "tokenizer_options")),
            batch,
            auto.interval_choice(statistics.examples, batch.values["batch_size"]),
            auto.early_stopping_choice(),
        ]

    def auto_sequence_length(self, lengths, cap):
        """`(sequence_length, why)` of an automatic run, once the tokenizer
        is trained: by default a high percentile of `lengths()` (token
        counts of sampled training texts) capped by `cap` (the model's
        positions, or None); see `keraslm.training.auto.length_choice`."""
        from keraslm.training import auto

        return auto.length_choice(lengths(), cap)

    # -- run-directory assets ----------------------------------------------
    def save_assets(self, run):
        """Writes what the task learned from the data (the label set) into
        `run`, a `keraslm.training.RunDirectory`."""
        if self.label_vocabulary is not None:
            self.label_vocabulary.save(run.file("labels"))

    def load_assets(self, run):
        """Reads back what `save_assets` wrote into `run` (a `RunDirectory`)."""
        from keraslm import text

        path = run.file("labels")
        if os.path.exists(path):
            self.label_vocabulary = text.LabelVocabulary.load(path)

    # -- evaluation ---------------------------------------------------------
    def evaluate(self, model, examples, tokenizer, loss=None) -> dict:
        """The task's metrics of `model` on `examples`, as a dict.

        `loss` is the training loss (a `keras.losses.Loss`): `metrics["loss"]`
        is its mean over the examples, so validation and evaluation report
        what training minimized. None uses the task's default loss.
        """
        raise NotImplementedError

    def default_loss_object(self):
        from keraslm import registry

        return registry.losses.get(self.default_loss).build_with(
            offered=self.loss_arguments())

    # -- export and generate ------------------------------------------------
    def sample_inputs(self, examples, tokenizer, shapes=((1, 9), (3, 33))):
        """Model inputs of several `(batch, length)` shapes cut from real data,
        for the exporters' parity checks: a list of arrays (or of dicts of
        arrays when the model takes several inputs)."""
        import numpy as np

        import itertools

        ids = [i for text in itertools.islice(self.texts(examples), 2000)
               for i in tokenizer.encode(text)]
        batches, offset = [], 0
        for batch, length in shapes:
            needed = batch * length
            if offset + needed > len(ids):
                raise ValueError(
                    f"The data is too short to build export checks: {len(ids)} tokens, "
                    f"expected at least {offset + needed}.")
            array = np.array(ids[offset:offset + needed], "int32").reshape(batch, length)
            batches.append(array if len(self.model_inputs) == 1
                           else {name: array for name in self.model_inputs})
            offset += needed
        return batches

    def generate_options(self):
        """Keyword arguments `keraslm generate` passes to the decoder."""
        return {}

    def generate(self, model, tokenizer, prompt, max_new_tokens, **options):
        """What `keraslm generate` prints for `prompt` (tasks that decode):
        by default the prompt continued by `keraslm.generation.generate`.

        `prompt` is a string, or a list of strings decoded as one batch
        (then a list comes back); `options` are the decoding options of
        `keraslm.generation.generate` (`sampler`, `num_beams`,
        `repetition_penalty`, `no_repeat_ngram_size`, `stop`, ...), passed
        on with this task's `generate_options()`."""
        from keraslm import generation

        return generation.generate(model, tokenizer, prompt, max_new_tokens,
                                   **options, **self.generate_options())


def concatenate(parts, spec):
    """The examples of several files as one: lists are joined; dataclasses
    (`TextExamples`, `TaggedSentences`, ...) have their list fields joined
    and `path` set to `spec`."""
    import dataclasses

    first = parts[0]
    if isinstance(first, list):
        return [example for part in parts for example in part]
    if dataclasses.is_dataclass(first):
        values = {}
        for field in dataclasses.fields(first):
            value = getattr(first, field.name)
            if field.name == "path":
                values[field.name] = str(spec)
            elif isinstance(value, list):
                values[field.name] = [x for part in parts for x in getattr(part, field.name)]
            elif value is None:
                values[field.name] = None
            else:
                values[field.name] = value
        return type(first)(**values)
    raise TypeError(f"Cannot join the examples of several files: "
                    f"{type(first).__name__}. Override Task.read_files.")


def task_class(name):
    """The `Task` subclass registered as `name`.

    An unknown name is an `UnknownComponentError` listing the installed
    tasks with a suggestion; a class whose `name` differs from the name it
    was registered under is an `InvalidComponentError`.

    Example:

    ```python
    keraslm.tasks.task_class("lm").Options    # its options dataclass
    ```
    """
    from keraslm import registry

    component = registry.tasks.get(name)
    cls = component.load()
    if getattr(cls, "name", None) != name:
        raise registry.InvalidComponentError(
            f"Task '{name}' from plugin '{component.plugin}' is a class whose `name` is "
            f"{getattr(cls, 'name', None)!r}. Expected name = {name!r} (the registered name).")
    return cls


def get_task(config):
    """The task of a `TrainConfig`, built with its options."""
    return task_class(config.task)(config)


def backbone_output_layer(backbone):
    """The name of the layer whose output is `backbone`'s hidden states."""
    return backbone.output._keras_history[0].name


def hidden_states_of(model, info=None):
    """A model from token ids to the hidden states of a trained model.

    `info` is the run's `config.json`, which records the backbone's output
    layer for task models that are plain functional graphs.
    """
    import keras

    if hasattr(model, "hidden_states_model"):
        return model.hidden_states_model()
    name = (info or {}).get("derived", {}).get("backbone_output_layer")
    if not name:
        raise ValueError("The run to initialize from does not record its "
                         "backbone output layer (config.json: "
                         "derived.backbone_output_layer).")
    return keras.Model(model.input, model.get_layer(name).output)


def mean_loss(loss, model, dataset):
    """The mean of `loss` over a dataset of `(inputs, labels)` batches,
    weighted by the positions each batch scores (labels != IGNORE_INDEX)."""
    import numpy as np

    total = count = 0.0
    for x, y in dataset:
        logits = model(x, training=False)
        labels = np.asarray(y)
        weight = float(np.sum(labels != IGNORE_INDEX)) if labels.ndim > 1 else len(labels)
        total += float(loss(y, logits)) * weight
        count += weight
    return total / max(count, 1.0)


def _local_numpy(value):
    """A model output as numpy; on JAX across processes, this process's
    copy of a replicated array."""
    import keras
    import numpy as np

    if getattr(value, "is_fully_addressable", True) is False:
        value = value.addressable_data(0)
    return np.asarray(keras.ops.convert_to_numpy(value))


def _token_statistics_eager(model, dataset):
    """`token_statistics` on a backend other than TensorFlow (JAX)."""
    import numpy as np

    total_nll = total_correct = total = 0.0
    for x, y in dataset:
        x = {k: np.asarray(v) for k, v in x.items()} if isinstance(x, dict) else np.asarray(x)
        logits = _local_numpy(model(x, training=False)).astype("float32")
        labels = np.asarray(y)
        valid = labels != IGNORE_INDEX
        safe = np.where(valid, labels, 0)
        shifted = logits - logits.max(-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        nll = -np.take_along_axis(log_probs, safe[..., None], -1)[..., 0]
        total_nll += float((nll * valid).sum())
        total_correct += float(((logits.argmax(-1) == safe) & valid).sum())
        total += float(valid.sum())
    return total_nll, total_correct, total


def token_statistics(model, dataset):
    """Sums of token NLL, correct predictions and counts over a dataset."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return _token_statistics_eager(model, dataset)
    import tensorflow as tf

    @tf.function
    def batch_statistics(x, y):
        logits = tf.cast(model(x, training=False), tf.float32)
        log_probs = tf.nn.log_softmax(logits, axis=-1)
        valid = tf.not_equal(y, IGNORE_INDEX)
        labels = tf.where(valid, y, tf.zeros_like(y))
        nll = -tf.gather(log_probs, labels, batch_dims=len(labels.shape))
        correct = tf.equal(tf.cast(tf.argmax(logits, -1), labels.dtype), labels)
        weights = tf.cast(valid, tf.float32)
        return (tf.reduce_sum(nll * weights),
                tf.reduce_sum(tf.cast(correct, tf.float32) * weights),
                tf.reduce_sum(weights))

    total_nll = total_correct = total = 0.0
    for x, y in dataset:
        nll, correct, count = batch_statistics(x, y)
        total_nll += float(nll)
        total_correct += float(correct)
        total += float(count)
    return total_nll, total_correct, total


def token_metrics(model, task_data, count_name, loss=None):
    """Cross-entropy, perplexity and accuracy over the labelled tokens.

    `cross_entropy` and `perplexity` are the model's own (natural-log) NLL per
    token; `loss` is the training loss when it is given and differs (label
    smoothing, focal), else the cross-entropy.
    """
    nll, correct, count = token_statistics(model, task_data.dataset)
    cross_entropy = nll / count
    metrics = {"loss": cross_entropy, "cross_entropy": cross_entropy,
               "perplexity": math.exp(min(cross_entropy, 50.0)),
               "accuracy": correct / count, count_name: int(count)}
    if loss is not None and not _is_plain_cross_entropy(loss):
        metrics["loss"] = mean_loss(loss, model, task_data.dataset)
    return metrics


def _is_plain_cross_entropy(loss):
    from keraslm.losses import MaskedSparseCategoricalCrossentropy

    return (type(loss) is MaskedSparseCategoricalCrossentropy
            and not float(getattr(loss, "label_smoothing", 0.0)))
