"""`keraslm.train`: the training workflow behind `keraslm train`."""

import contextlib
import csv
import dataclasses
import datetime
import math
import os
import shutil
import sys
import time

from keraslm.tasks.base import backbone_output_layer
from keraslm.training import auto
from keraslm.training import distributed
from keraslm.training.config import TrainConfig
from keraslm.training.run_directory import (RunDirectory, atomic_path, repair_csv,
                                            write_evaluation_files)
from keraslm.training.xla import check_fusible_available, fusible_xla, xla_mode


class TrainingError(RuntimeError):
    """Training stopped for a reason the user must act on (NaN loss, bad run dir)."""


@dataclasses.dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        run_dir: str. The run directory.
        metrics: dict. As written to `metrics.json`: `final` (validation, final
            weights), `best` (validation, best checkpoint), `test` and
            `test_best` (with a test file), `steps`.
        model: the trained `keras.Model` (final weights).
        tokenizer: the run's `keraslm.text.Tokenizer`.
        config: the resolved `TrainConfig`.
    """

    run_dir: str
    metrics: dict
    model: object
    tokenizer: object
    config: TrainConfig


def _run_dir(config, resume) -> RunDirectory:
    if resume:
        return RunDirectory(resume)
    if config.output_dir:
        run = RunDirectory(config.output_dir)
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run = RunDirectory(os.path.join("runs", f"{config.task}-{stamp}"))
    return run


def _refuse_existing_run(run):
    if run.exists():
        raise TrainingError(
            f"{run.path} already holds a training run. Continue it with "
            f"`keraslm train --resume {run.path}`, or choose another output "
            f"directory (-o).")


def load_task(run_dir, config=None):
    """The task of a run directory, with the assets it saved (labels).

    Example:

    ```python
    task = keraslm.training.load_task("runs/reviews")
    task.label_vocabulary.labels
    ```
    """
    from keraslm.tasks.base import get_task

    task = get_task(config or TrainConfig.from_run(run_dir))
    task.load_assets(RunDirectory(run_dir))
    return task


def load_run(run_dir, checkpoint="final"):
    """`(config, task, model, tokenizer)` of a run directory.

    Args:
        run_dir: str. A keraslm run directory.
        checkpoint: str. `final` (model.keras), `best` or `last`.

    Example:

    ```python
    config, task, model, tokenizer = keraslm.training.load_run("runs/lm", "best")
    task.evaluate(model, task.read("test.txt"), tokenizer)
    ```
    """
    run = RunDirectory(run_dir)
    config = TrainConfig.from_run(run.path)
    task = load_task(run.path, config)
    return config, task, run.load_model(checkpoint), run.load_tokenizer()


def _describe_size(task, examples):
    """`"1,234"`, or for a streamed corpus not read yet (counting it would
    be a pass of its own) `"the texts of N file(s), read as a stream,"`."""
    from keraslm import data

    if isinstance(examples, data.Corpus) and examples.known_length is None:
        return f"the texts of {len(examples.files):,} file(s), read as a stream,"
    return f"{task.size(examples):,}"


def _load_tokenizer_or_train(config, task, train_examples, run, resume):
    from keraslm import data, text

    if resume:
        return run.load_tokenizer()
    if config.init_from:
        tokenizer = RunDirectory(config.init_from).load_tokenizer()
    else:
        options = dict(config.tokenizer_options)
        if config.lowercase:
            options["lowercase"] = True

        def learn():
            return text.train_tokenizer(config.tokenizer, task.texts(train_examples),
                                        vocabulary_size=config.vocabulary_size,
                                        progress=lambda line: _say(config, line),
                                        **options)

        if config.token_cache and isinstance(train_examples, data.Corpus):
            # A shared cache: a repeated run on the same files reuses it.
            tokenizer = data.cached_tokenizer(
                train_examples, config.token_cache,
                {"type": config.tokenizer, "vocabulary_size": config.vocabulary_size,
                 "options": options, "task": config.task},
                learn, progress=lambda line: _say(config, line))
        else:
            tokenizer = learn()
    _save_tokenizer(tokenizer, run.file("tokenizer"))
    return tokenizer


def _save_tokenizer(tokenizer, path):
    """Saves into a temporary directory beside `path`, then renames it."""
    partial = os.path.join(os.path.dirname(path),
                           f".{os.path.basename(path)}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer.save(partial)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(partial, path)


def _build_model(config, task, tokenizer):
    """Returns `(task_model, backbone_output_layer_name)`."""
    from keraslm import registry
    from keraslm.models import BUILDERS, PRESETS

    if config.init_from:
        source = RunDirectory(config.init_from)
        backbone = task.backbone_from_run(source.load_model("final"), source.info())
    else:
        options = dict(config.model_options)
        preset_values = PRESETS[config.model_name].get(config.preset or "", {})
        if config.model_name != "lstm_lm":
            longest = config.sequence_length
            current = options.get("max_sequence_length",
                                  preset_values.get("max_sequence_length", 0))
            if current < longest:
                options["max_sequence_length"] = longest
        base = BUILDERS[config.model_name](
            vocabulary_size=tokenizer.vocabulary_size, preset=config.preset, **options)
        backbone = task.build_backbone(base)
    model = registry.task_heads.build(task.head, backbone=backbone, **task.head_options())
    hidden = (backbone.hidden_states_model() if hasattr(backbone, "hidden_states_model")
              else backbone)
    return model, backbone_output_layer(hidden)


def build_loss(config, task):
    """The training loss: `--loss` (or the task's default) with the arguments it
    accepts (`ignore_class` and `from_logits` from the task, `label_smoothing`
    when set; a loss that does not take a set option is an error)."""
    from keraslm import registry

    name = task.default_loss if config.loss == "auto" else config.loss
    given = {"label_smoothing": config.label_smoothing} if config.label_smoothing else {}
    return registry.losses.get(name).build_with(given=given,
                                                offered=task.loss_arguments())


def build_optimizer(config, total_steps):
    """The optimizer and its schedule, each given the arguments it accepts.

    The schedule is offered `learning_rate`, `total_steps`, `warmup_steps`,
    `decay_steps` (the steps after warm-up when it warms up, else all) and
    `step_size` (a third of the steps); the optimizer gets `weight_decay`,
    `global_clipnorm` and the weight average when they are set, and
    `optimizer_options`. An option the chosen component does not accept is
    an error naming it.
    """
    from keraslm import registry

    warmup = config.warmup_steps
    if warmup is None:
        warmup = int(0.05 * total_steps)
    component = registry.schedules.get(config.schedule)
    accepted = component.accepts()
    warms_up = accepted is None or "warmup_steps" in accepted
    offered = {"total_steps": total_steps, "warmup_steps": warmup,
               "decay_steps": max(total_steps - warmup, 1) if warms_up else total_steps,
               "step_size": max(total_steps // 3, 1)}
    given = {"learning_rate": config.learning_rate}
    if config.warmup_steps is not None:
        given["warmup_steps"] = config.warmup_steps
    schedule = component.build_with(given=given, offered=offered)

    given = {**config.optimizer_options, "learning_rate": schedule}
    if config.global_clipnorm:
        given["global_clipnorm"] = config.global_clipnorm
    if config.weight_decay is not None:
        given["weight_decay"] = config.weight_decay
    if config.ema_momentum is not None:
        clash = sorted({"use_ema", "ema_momentum"} & set(config.optimizer_options))
        if clash:
            raise ValueError(
                f"`ema_momentum` and optimizer_options {clash} both set the weight "
                f"average. Received: ema_momentum={config.ema_momentum!r}, "
                f"optimizer_options={config.optimizer_options!r}; expected only "
                f"`ema_momentum`.")
        given.update(use_ema=True, ema_momentum=config.ema_momentum)
    try:
        return registry.optimizers.get(config.optimizer).build_with(given=given)
    except registry.UnacceptedOptionError:
        raise
    except (TypeError, ValueError) as error:
        if not config.optimizer_options:
            raise
        raise ValueError(
            f"The optimizer '{config.optimizer}' refused its options ({error}). "
            f"Received: optimizer_options={config.optimizer_options!r}; expected "
            f"arguments of its factory in keraslm.registry.optimizers."
        ) from error


def _check_clipping_across_replicas(config, optimizer):
    """Several replicas and `global_clipnorm`: the optimizer must clip the
    global gradient (a plain Keras optimizer clips each replica's own)."""
    from keraslm.optimizers import GlobalClipAcrossReplicas

    replicas = _strategy(config).num_replicas_in_sync
    if (config.global_clipnorm and replicas > 1
            and not isinstance(optimizer, GlobalClipAcrossReplicas)):
        raise ValueError(
            f"The optimizer '{config.optimizer}' ({type(optimizer).__name__}) would clip "
            f"each of the {replicas} replicas' gradients on its own, not the global "
            f"gradient. Received: global_clipnorm={config.global_clipnorm!r}, "
            f"strategy={config.strategy!r}. Use sgd, adam or adamw, give the optimizer "
            f"keraslm.optimizers.GlobalClipAcrossReplicas as its first base, or set "
            f"global_clipnorm=0.")


def _uses_ema(model):
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    return bool(getattr(optimizer, "use_ema", False))


_STRATEGIES = {}


def _strategy(config):
    """The tf.distribute strategy, created once per process."""
    import tensorflow as tf

    if config.strategy == "mirrored":
        if "mirrored" not in _STRATEGIES:
            _STRATEGIES["mirrored"] = tf.distribute.MirroredStrategy()
        return _STRATEGIES["mirrored"]
    if config.strategy == "multi_worker":
        return distributed.strategy()  # made by distributed.join
    return tf.distribute.get_strategy()


def _completed_steps(run):
    states = run.backups()
    return states[0].step if states else 0


def _restore(model, run, config):
    """Loads the newest intact resume state into `model`; the steps it holds.

    A damaged state (a kill inside a write of an earlier version, a disk
    error) is reported by name and the previous one is tried, then
    `checkpoints/last.keras` (model and optimizer at the last interval's
    end); training then repeats the steps after the state it loaded.
    """
    states = run.backups()
    damaged = []
    for step, interval, path in states:
        problem = run.backup_problem(path)
        if problem is None:
            try:
                if model.optimizer is not None and not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(path)
            except Exception as error:  # h5py/Keras raise many kinds for a bad file
                problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            damaged.append(f"{path} ({problem})")
            _say(config, f"[resume] {path} is damaged ({problem.split(':')[0]}); "
                         f"trying the previous state")
            continue
        if damaged:
            _say(config, f"[resume] restored {path} (step {step}); the steps "
                         f"after it are trained again")
        return step
    if damaged:
        # Every state is damaged: the last checkpoint holds the model and the
        # optimizer (its step counter included) of the last interval's end.
        last = run.file("last_checkpoint")
        if os.path.exists(last):
            try:
                model.load_weights(last)
                step = int(model.optimizer.iterations.numpy())
            except Exception as error:  # as above: many kinds for a bad file
                damaged.append(f"{last} ({type(error).__name__}: {error})")
            else:
                _say(config, f"[resume] no intact state in {run.file('backup')}; "
                             f"restored {last} (step {step}); the steps after it are "
                             f"trained again"
                             + (" (with a weight average, from the average)"
                                if config.ema_momentum else ""))
                return step
        else:
            damaged.append(f"{last} (missing)")
        raise TrainingError(
            f"No intact resume state in {run.file('backup')}: " + "; ".join(damaged)
            + ". Start a new run (-o) or, from the finished parts of another run, "
              "with --init-from.")
    return 0


def _best_validation_loss(history_path):
    if not os.path.exists(history_path):
        return None
    with open(history_path) as handle:
        values = [float(row["val_loss"]) for row in csv.DictReader(handle)
                  if row.get("val_loss") not in (None, "", "nan")]
    return min(values) if values else None


def _best_is_last(history_path):
    """Whether the last validation of the history is strictly its lowest
    loss: the best checkpoint was then written after the last step and
    holds the final weights (without a weight average)."""
    if not os.path.exists(history_path):
        return False
    with open(history_path) as handle:
        values = [float(row["val_loss"]) for row in csv.DictReader(handle)
                  if row.get("val_loss") not in (None, "", "nan")]
    return len(values) > 0 and all(value > values[-1] for value in values[:-1])


def _say(config, message):
    if config.verbose:
        print(message, flush=True)


def train(config=None, *, resume=None, **options) -> TrainResult:
    """Trains a model for a task and writes a run directory.

    Args:
        config: a `TrainConfig`, or None to build one from `options`.
        resume: str or None. A run directory to continue from its last
            checkpoint (its saved configuration is used).
        **options: `TrainConfig` fields (`task="lm"`, `train="train.txt"`,
            `epochs=3`, ...), applied on top of `config`.

    Returns:
        A `TrainResult`. The run directory holds `config.json`, `tokenizer/`,
        `checkpoints/last.keras` and `best.keras`, `model.keras` (final),
        `backup/` (resume state), `logs/` (TensorBoard), `steps.csv`,
        `history.csv`, `metrics.json` and `training_curve.png`.

    Raises:
        TrainingError: the loss became NaN (the last good checkpoint is
            kept), or the run directory already holds a run.

    Example:

    ```python
    result = keraslm.train(task="lm", train="shakespeare/train.txt",
                           valid="shakespeare/valid.txt", tokenizer="character",
                           steps=200, output_dir="runs/shakespeare")
    result.metrics["final"]["bits_per_character"]
    ```
    """
    started = time.monotonic()  # a time budget counts from here (imports included)
    import keras

    if resume:
        config = TrainConfig.from_run(resume)
        config.verbose = options.pop("verbose", config.verbose)
        if options:
            raise ValueError(f"--resume continues a run with its saved configuration; "
                             f"it takes no other options. Received: {sorted(options)}")
    else:
        if config is None:
            config = TrainConfig.from_dict(options, source="keraslm.train()")
        elif options:
            config = dataclasses.replace(config, **options)
    config.validate()
    mode = xla_mode(config.xla)
    if mode == "fusible":
        check_fusible_available()  # before the run directory is made
    run = _run_dir(config, resume)
    if config.strategy in distributed.STRATEGIES:
        # Checked and joined before any long work; a worker other than the
        # chief writes a scratch copy of the run directory.
        distributed.join(config, say=lambda line: _say(config, line))
        run = distributed.worker_run_directory(run, resume)
    created = not os.path.exists(run.path)
    previous_policy = keras.config.dtype_policy()
    try:
        with run.lock("train --resume" if resume else "train") as lock:
            if lock.taken_over is not None:
                _say(config, f"[lock] {run.path}: taking over the lock of pid "
                             f"{lock.taken_over.get('pid')}, which no longer runs")
            run.remove_partial_files()
            if resume:
                run.require_file("config", "not a keraslm run directory (no config.json)")
            else:
                _refuse_existing_run(run)
            os.makedirs(run.file("checkpoints"), exist_ok=True)
            keras.config.set_dtype_policy(config.precision)
            try:
                with fusible_xla() if mode == "fusible" else contextlib.nullcontext():
                    return _train(config, run, resume, started)
            finally:
                if created and not run.exists():
                    # Stopped before config.json: nothing to resume, nothing to
                    # keep (removed while this process still holds the lock).
                    for name in os.listdir(run.path):
                        path = os.path.join(run.path, name)
                        if name == os.path.basename(lock.path):
                            continue
                        if os.path.isdir(path):
                            shutil.rmtree(path, ignore_errors=True)
                        else:
                            with contextlib.suppress(OSError):
                                os.remove(path)
                    created = "empty"
    except KeyboardInterrupt:
        if run.exists():
            done = _completed_steps(run)
            print(f"\n[interrupted] {run.path}: the resume state holds {done} steps. "
                  f"Continue with:\n  keraslm train --resume {run.path}",
                  file=sys.stderr, flush=True)
        raise
    finally:
        keras.config.set_dtype_policy(previous_policy)
        distributed.remove_scratch()
        if created == "empty":
            with contextlib.suppress(OSError):
                os.rmdir(run.path)  # fails if another process wrote meanwhile


def _train(config, run, resume, started):
    import keras

    import keraslm
    from keraslm.tasks.base import get_task
    from keraslm.training import callbacks as cb
    from keraslm.training.plots import plot_training_curve

    keras.utils.set_random_seed(config.seed)
    task = get_task(config)

    if resume:
        task.load_assets(run)  # the labels of the run, to check the files against
    _say(config, f"[data] reading {config.train}")
    train_examples = task.read_files(config.train)
    task.fit_labels(train_examples)  # keeps the labels a resumed run loaded
    if config.valid:
        valid_examples = task.read_files(config.valid)
    else:
        train_examples, valid_examples = task.split(train_examples)
        _say(config, f"[data] no --valid: held out {config.validation_fraction:.0%} "
                     f"of {config.train} (seed {config.seed})")
    # The test file is read now, not after training: a bad one is found
    # before any work.
    test_examples = task.read_files(config.test) if config.test else None
    # Labels the training file lacks, before the tokenizer trains (a split
    # of the training file has none).
    for examples in ((valid_examples,) if config.valid else ()) + (
            (test_examples,) if config.test else ()):
        task.check_labels(examples)
    _say(config, f"[data] {_describe_size(task, train_examples)} training and "
                 f"{_describe_size(task, valid_examples)} validation examples"
                 + (f", {_describe_size(task, test_examples)} test examples"
                    if config.test else ""))

    automatic = None  # the auto choices (keraslm.training.auto), when they apply
    if auto.is_active(config, resume):
        automatic = auto.decide(config, task, train_examples)
        config.validate()  # the chosen values with the given ones
    tokenizer = _load_tokenizer_or_train(config, task, train_examples, run, resume)
    _say(config, f"[tokenizer] {type(tokenizer).__name__}, "
                 f"{tokenizer.vocabulary_size:,} ids")
    auto_report = None
    if automatic is not None:
        applied, skipped, statistics = automatic
        length = auto.decide_sequence_length(config, task, train_examples, tokenizer)
        if length is not None:
            applied.append(length)
        else:
            skipped.append(auto.Choice("sequence_length", {}, "given: --sequence-length"))
        auto_report = auto.describe(applied, skipped, statistics)
        for line in auto.format_block(auto_report):
            _say(config, line)
    train_examples = task.prepare_training_data(
        train_examples, tokenizer, config.token_cache or run.file("token_cache"),
        progress=lambda line: _say(config, line))
    train_data = task.dataset(train_examples, tokenizer, training=True)
    valid_data = task.dataset(valid_examples, tokenizer, training=False)
    task.save_assets(run)

    steps_per_epoch = train_data.steps_per_epoch
    loss = build_loss(config, task)
    budget = None
    if config.time_budget and resume:
        # The steps the budget gave the first time; not measured again.
        total_steps = run.info()["derived"]["total_steps"]
        interval = run.info()["derived"]["checkpoint_interval"]
    elif config.time_budget:
        budget = _plan_budget(config, task, tokenizer, train_data, valid_data,
                              valid_examples, test_examples, loss, started)
        total_steps, interval = budget["steps"], budget["checkpoint_interval"]
        if getattr(config, "_auto_epochs", False):  # an automatic cap (training.auto)
            most = math.ceil(config.epochs * steps_per_epoch)
            if most < total_steps:
                _say(config, f"[auto] {most} steps ({config.epochs:g} epochs) of the "
                             f"{total_steps} that fit the budget")
                total_steps, interval = most, min(interval, most)
                budget["capped_at_epochs"] = config.epochs
    else:
        total_steps = config.steps or math.ceil(config.epochs * steps_per_epoch)
        interval = min(config.checkpoint_every, total_steps)
    intervals = math.ceil(total_steps / interval)
    total_steps = intervals * interval
    done = 0  # steps

    with _strategy(config).scope():
        model, backbone_layer = _build_model(config, task, tokenizer)
        optimizer = build_optimizer(config, total_steps)
        _check_clipping_across_replicas(config, optimizer)
        model.compile(optimizer=optimizer, loss=loss,
                      jit_compile=xla_mode(config.xla) == "on")
        if resume:
            done = _restore(model, run, config)
            for key in ("steps", "history"):
                repair_csv(run.file(key))

    info = {
        "keraslm_version": keraslm.__version__,
        "config": {**config.to_dict(), "task_options": dataclasses.asdict(task.options)},
        "derived": {
            "vocabulary_size": tokenizer.vocabulary_size,
            "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps,
            "checkpoint_interval": interval,
            "parameters": int(model.count_params()),
            "backbone_output_layer": backbone_layer,
            "model_class": type(model).__name__,
            **({"time_budget": budget} if budget else {}),
            **({"auto": auto_report} if auto_report else {}),
        },
    }
    if not resume:
        run.write_json("config", info)
    _say(config, f"[model] {config.model_name} ({config.preset or 'custom'}) + "
                 f"{task.head} head, {model.count_params():,} parameters; "
                 f"{total_steps} steps ({steps_per_epoch} per epoch), "
                 f"precision {config.precision}, xla {config.xla}")
    if done:
        _say(config, f"[resume] {run.path}: {done} steps done, "
                     f"continuing at step {done + 1}")

    first_batch = next(iter(train_data.dataset))[0]
    tokens_per_step = int(sum(
        int(value.shape[0]) * int(value.shape[1])
        for value in (first_batch.values() if isinstance(first_batch, dict)
                      else [first_batch])))

    nan_guard = cb.NaNGuard(start_step=done)
    best_so_far = _best_validation_loss(run.file("history"))
    callbacks = [
        nan_guard,
        cb.StepLog(run.file("steps"), start_step=done),
        cb.RunBackup(run, nan_guard, interval),
        # With a weight average, validation and the checkpoints below use the
        # average; the backup above holds the raw weights and the average (an
        # optimizer variable), so a resumed run goes on from both.
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if _uses_ema(model) else []),
        cb.SafeModelCheckpoint(run.file("last_checkpoint"), nan_guard),
        cb.SafeModelCheckpoint(run.file("best_checkpoint"), nan_guard,
                               monitor="val_loss",
                               initial_value_threshold=best_so_far),
        keras.callbacks.CSVLogger(run.file("history"), append=True),
        keras.callbacks.TensorBoard(run.file("logs")),
    ]
    if config.verbose:
        deadline = (started + config.time_budget) if budget else None
        callbacks.append(cb.Progress(total_steps, interval, tokens_per_step,
                                     start_step=done, deadline=deadline))
    guard = None
    if budget:
        guard = cb.BudgetGuard(started + config.time_budget,
                               budget["planned_final_seconds"],
                               budget["interval_seconds"], start_step=done,
                               total_steps=total_steps)
        callbacks.append(guard)
    early = None
    if config.early_stopping:
        early = keras.callbacks.EarlyStopping(monitor="val_loss",
                                              patience=config.early_stopping)
        callbacks.append(early)
    fit_options = {}
    weights = getattr(task, "class_weights", lambda examples: None)(train_examples)
    if weights is not None:
        fit_options["class_weight"] = weights
    interrupt = cb.Interrupt(run, done, interval)
    callbacks.append(interrupt)  # last: at an interval's end the state is written first
    _say(config, f"[train] {total_steps - done} steps to go, "
                 f"checkpoint every {interval}")
    # A state written at Ctrl-C ends inside an interval: the rest of that
    # interval first, then whole intervals, each from its place in the data.
    completed, into = divmod(done, interval)
    parts = ([(done, completed + 1, interval - into)] if into else []) + \
        [(-(-done // interval) * interval, intervals, interval)]
    with interrupt:
        for start, end, length in parts:
            if end * interval <= start or nan_guard.bad_step is not None:
                continue
            if guard is not None and guard.stopped_at is not None:
                break
            if early is not None and early.stopped_epoch:
                break
            distributed.fit_function(model, config, loss)(
                      train_data.dataset.repeat().skip(start), epochs=end,
                      initial_epoch=start // interval, steps_per_epoch=length,
                      validation_data=valid_data.dataset, callbacks=callbacks,
                      verbose=0, shuffle=False, **fit_options)

    trained = time.monotonic()
    if guard is not None and guard.stopped_at is not None:
        _say(config, f"[budget] stopped at step {guard.stopped_at} of {total_steps}: "
                     f"training ran slower than measured, and another interval "
                     f"would end after the budget (`--resume` trains the rest)")
    if nan_guard.bad_step is not None:
        last_good = _completed_steps(run)
        raise TrainingError(
            f"The loss became NaN or infinite at step {nan_guard.bad_step}; training "
            f"stopped. The last good checkpoint is {run.file('last_checkpoint')} "
            f"(step {last_good}). Try a lower learning rate (it was "
            f"{config.learning_rate:g}), gradient clipping (global_clipnorm) or "
            f"float32 precision.")

    stopped_early = None
    if early is not None:
        stopped_early = _keep_best(config, run, model, early, interval)
    if not distributed.writes_run():
        return TrainResult(run_dir=run.path, metrics={}, model=model,
                           tokenizer=tokenizer, config=config)
    with atomic_path(run.file("final_model"), ".keras") as partial:
        model.save(partial)
    _say(config, "[evaluate] validation")
    metrics = {"final": task.evaluate(model, valid_examples, tokenizer, loss),
               "steps": total_steps}
    write_evaluation_files(run.path, getattr(task, "evaluation_files", None))
    best_path = run.file("best_checkpoint")
    # With early stopping the final model holds the best checkpoint's
    # weights: its scores are the best's, not computed twice.
    same = stopped_early is not None and stopped_early["restored_best"]
    # Nor when the best checkpoint is the last one (the usual short run).
    same = same or (not _uses_ema(model) and _best_is_last(run.file("history")))
    if os.path.exists(best_path) and not same:
        best_model = keraslm.load_model(best_path)
        metrics["best"] = task.evaluate(best_model, valid_examples, tokenizer, loss)
    elif same:
        metrics["best"] = metrics["final"]
    if config.test:
        _say(config, f"[evaluate] test: {config.test}")
        metrics["test"] = task.evaluate(model, test_examples, tokenizer, loss)
        if os.path.exists(best_path) and not same:
            metrics["test_best"] = task.evaluate(best_model, test_examples, tokenizer,
                                                 loss)
        elif same:
            metrics["test_best"] = metrics["test"]
    if budget:
        metrics["time_budget"] = {**budget, "stopped_at_step": guard.stopped_at,
                                  "slowdown": round(guard.slowdown, 2),
                                  "seconds_at_training_end": round(trained - started, 1),
                                  # model.fit returning after its last interval
                                  # (seen to take up to 17 s now and then)
                                  "seconds_after_last_interval": round(
                                      trained - (guard.last_interval_end or trained), 1),
                                  "seconds_used": round(time.monotonic() - started, 1)}
        if guard.stopped_at is not None:
            metrics["steps"] = guard.stopped_at
    if stopped_early is not None:
        metrics["early_stopping"] = stopped_early
        if stopped_early["stopped_at_step"] is not None:
            metrics["steps"] = min(metrics["steps"], stopped_early["stopped_at_step"])
    if distributed.report():
        metrics["distributed"] = distributed.report()
    run.write_json("metrics", metrics)
    plot_training_curve(run.path)
    _say(config, f"[done] {run.path}: " + ", ".join(
        f"{key} {value:.4f}" for key, value in metrics["final"].items()
        if isinstance(value, float)))
    return TrainResult(run_dir=run.path, metrics=metrics, model=model,
                       tokenizer=tokenizer, config=config)


def _keep_best(config, run, model, early, interval):
    """With early stopping: the best checkpoint's weights become the
    model's (the final model); what happened, for metrics.json."""
    import keraslm

    stopped = (early.stopped_epoch + 1) * interval if early.stopped_epoch else None
    if stopped is not None:
        _say(config, f"[early stopping] at step {stopped}: {early.patience} validations "
                     f"without a lower validation loss")
    best = run.file("best_checkpoint")
    restored = False
    if os.path.exists(best) and early.best is not None and math.isfinite(early.best):
        model.set_weights(keraslm.load_model(best).get_weights())
        restored = True
        _say(config, f"[early stopping] the final model is the best checkpoint "
                     f"(validation loss {early.best:.4f})")
    return {"patience": early.patience, "stopped_at_step": stopped,
            "best_validation_loss": None if early.best is None else float(early.best),
            "restored_best": restored}


def _plan_budget(config, task, tokenizer, train_data, valid_data, valid_examples,
                 test_examples, loss, started):
    """Measures a throwaway copy of the model and plans the steps that fit
    `config.time_budget` (see `keraslm.training.budget`)."""
    import tempfile

    import keraslm
    from keraslm.training import budget as bd
    from keraslm.training import callbacks as cb

    def build():
        with _strategy(config).scope():
            model, _ = _build_model(config, task, tokenizer)
            model.compile(optimizer=build_optimizer(config, 1000), loss=loss,
                          jit_compile=xla_mode(config.xla) == "on")
        return model

    def per_step_callbacks():  # their cost is part of a step
        return [cb.NaNGuard(), cb.StepLog(os.path.join(scratch, "steps.csv"))]

    def evaluate(path):
        task.evaluate(keraslm.load_model(path), valid_examples, tokenizer, loss)

    with tempfile.TemporaryDirectory(prefix="keraslm-budget-") as scratch:
        timings = bd.measure(build, train_data.dataset, valid_data.dataset,
                             callbacks=per_step_callbacks, evaluate=evaluate)
    valid_batches = _count_batches(valid_data.dataset)
    # The final and the best model; with early stopping they are one.
    models = 1 if config.early_stopping else 2
    final_batches = models * valid_batches
    if test_examples is not None:
        final_batches += models * _count_batches(
            task.dataset(test_examples, tokenizer, training=False).dataset)
    left = config.time_budget - (time.monotonic() - started)
    plan = bd.plan_steps(left, timings, valid_batches=valid_batches,
                         final_batches=final_batches,
                         evaluations=models * (2 if test_examples is not None else 1),
                         checkpoint_every=config.checkpoint_every)
    _say(config, f"[budget] {bd.format_duration(config.time_budget)}: "
                 f"{bd.format_duration(config.time_budget - left)} used by the data, "
                 f"the tokenizer and measuring ({timings.calibration:.1f} s: first step "
                 f"{timings.first_step:.1f} s, then {timings.step * 1000:.0f} ms a step, "
                 f"validation {timings.eval_batch * valid_batches:.1f} s a pass); "
                 f"{plan.steps} steps fit, with {bd.SAFETY - 1:.0%} to spare for "
                 f"what measuring does not see")
    return {"seconds": config.time_budget, "steps": plan.steps,
            "interval_seconds": round(plan.interval_seconds, 3),
            "checkpoint_interval": plan.interval,
            "seconds_before_training": round(config.time_budget - left, 1),
            "planned_training_seconds": round(plan.training, 1),
            "planned_final_seconds": round(plan.final, 1),
            "measured": {key: round(value, 4) if isinstance(value, float) else value
                         for key, value in dataclasses.asdict(timings).items()}}


def _count_batches(dataset):
    count = int(dataset.cardinality())
    if count >= 0:
        return count
    return sum(1 for _ in dataset)  # unknown (filtered, streamed): count once


def remove_run(run_dir):
    """Deletes a run directory (used by tests and `--overwrite`)."""
    shutil.rmtree(run_dir, ignore_errors=True)

