"""Training within a time budget: `keraslm train --time-budget 10m`.

The budget counts the whole run, from the call to `keraslm.train` to the
written metrics: reading the data, training the tokenizer, compiling,
training, the validation passes at every checkpoint interval and the final
evaluation. Once the data is ready, a throwaway copy of the model is
compiled and timed on real batches (`measure`): the first step (tracing and
compiling), warm steps inside `model.fit` with the run's per-step
callbacks, a warm validation batch, a checkpoint write and one final
evaluation. `plan_steps` turns those times into the number of optimizer
steps that fits what is left, with 10% to spare; the learning-rate schedule
(warm-up, decay) is then built for that many steps, so it ends when the
budget does. If training then runs slower than measured (a busy machine),
`keraslm.training.callbacks.BudgetGuard` stops it at the end of the
interval after which another one and the final evaluation would not fit.

Example:

```python
import keraslm

result = keraslm.train(task="lm", train="../shared/data/shakespeare/train.txt",
                       time_budget="2m")
print(result.metrics["time_budget"])  # planned steps, measured times, seconds used
```
"""

import dataclasses
import math
import os
import re
import tempfile
import time

_UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)\s*$", re.IGNORECASE)

# Planned time is multiplied by this to leave room for what the calibration
# does not see (callbacks, logging, a busier machine).
SAFETY = 1.1


def parse_duration(value, name="time_budget") -> float:
    """Seconds from `90`, `"90s"`, `"10m"`, `"1.5h"` (no unit: seconds).

    Raises:
        ValueError: naming `name`, the value received and the expected form.
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"`{name}` must be a duration such as 90s, 10m or 1.5h (a number "
                f"alone is seconds). Received: {value!r}")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"`{name}` must be a positive duration such as 90s, 10m "
                         f"or 1.5h. Received: {value!r}")
    return seconds


def format_duration(seconds) -> str:
    """`"1h05m"`, `"3m00s"`, `"45s"`; `"?"` when not finite (an unknown ETA)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclasses.dataclass
class Timings:
    """What `measure` saw on the throwaway model, in seconds.

    Attributes:
        first_step: building the model and its first training step (tracing
            and compiling included).
        step: a warm training step inside `model.fit` with the run's
            per-step callbacks (median of the timed ones).
        first_eval: the first validation pass beyond a warm one (tracing).
        eval_batch: a warm validation batch.
        save: writing the model once (`.keras`).
        evaluation: one final evaluation (`Task.evaluate` on the validation
            examples, tracing included) and loading a checkpoint.
        calibration: the whole measurement, model building included.
        timed_steps: how many warm steps were timed.
    """

    first_step: float
    step: float
    first_eval: float
    eval_batch: float
    save: float
    calibration: float
    timed_steps: int
    evaluation: float = 0.0


def measure(build_model, train_dataset, valid_dataset, *, callbacks=(),
            evaluate=None, min_seconds=1.5, max_steps=200) -> Timings:
    """Times a freshly built, compiled model on real batches, trained with
    `model.fit` and the run's per-step callbacks.

    Args:
        build_model: callable returning a compiled `keras.Model` like the one
            that will train (same shape, loss, optimizer, XLA setting).
        train_dataset, valid_dataset: `tf.data.Dataset` of batches.
        callbacks: callable returning the per-step callbacks of the run
            (their cost is part of a step), or a list.
        evaluate: callable(path) loading the `.keras` model at `path` and
            running one final evaluation, or None.
        min_seconds, max_steps: warm steps are timed for about `min_seconds`,
            at most `max_steps`.

    Returns:
        `Timings`.
    """
    import keras

    began = time.perf_counter()
    model = build_model()
    extra = list(callbacks() if callable(callbacks) else callbacks)
    ends = []  # when each training batch ended
    clock = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: ends.clear(),
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    batches = train_dataset.repeat()

    def fit(steps):
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0,
                  callbacks=[*extra, clock], shuffle=False)
        return [b - a for a, b in zip(ends, ends[1:])]

    fit(2)  # tracing and compiling
    first_step = time.perf_counter() - began
    rough = sorted(fit(6))[2]
    steps = int(min(max(min_seconds / max(rough, 1e-6), 6), max_steps))
    times = sorted(fit(steps + 1))
    warm = times[len(times) // 2]

    start = time.perf_counter()
    model.evaluate(valid_dataset.take(20), verbose=0)
    traced = time.perf_counter() - start
    batches_seen = sum(1 for _ in valid_dataset.take(20))
    start = time.perf_counter()
    model.evaluate(valid_dataset.take(20), verbose=0)
    eval_batch = (time.perf_counter() - start) / max(batches_seen, 1)
    first_eval = max(traced - eval_batch * batches_seen, 0.0)

    with tempfile.TemporaryDirectory(prefix="keraslm-budget-") as directory:
        path = os.path.join(directory, "model.keras")
        start = time.perf_counter()
        model.save(path)
        save = time.perf_counter() - start
        evaluation = 0.0
        if evaluate is not None:
            start = time.perf_counter()
            evaluate(path)
            evaluation = time.perf_counter() - start
    return Timings(first_step=first_step, step=warm, first_eval=first_eval,
                   eval_batch=eval_batch, save=save, evaluation=evaluation,
                   calibration=time.perf_counter() - began, timed_steps=len(times))


@dataclasses.dataclass
class Plan:
    """The steps a budget allows and how the time is spent.

    Attributes:
        steps: optimizer steps (a multiple of `interval` when above it).
        interval: steps between checkpoints and validation passes.
        seconds_left: budget left when planning.
        training: planned seconds for the steps, validation passes and
            checkpoints (the first step's compiling included).
        final: planned seconds for saving and the final evaluation.
        interval_seconds: planned seconds for one warm interval: its steps,
            validation pass and checkpoints.
    """

    steps: int
    interval: int
    seconds_left: float
    training: float
    final: float
    interval_seconds: float


def plan_steps(seconds_left, timings, *, valid_batches, checkpoint_every,
               final_batches=None, evaluations=2, safety=SAFETY) -> Plan:
    """The most steps whose training, validation and final evaluation fit.

    Args:
        seconds_left: float. Budget not yet spent.
        timings: `Timings`.
        valid_batches: int. Batches in one validation pass.
        checkpoint_every: int. The run's checkpoint interval.
        final_batches: int. Batches the evaluations after training read
            (default: `evaluations` validation passes).
        evaluations: int. Evaluations after training, each tracing anew: 2
            for the final and the best model, 4 with a test file.
        safety: float. Planned seconds are multiplied by this.

    Returns:
        `Plan`.

    Raises:
        ValueError: not even one step fits; the message gives the times.
    """
    t = timings
    one_pass = t.eval_batch * valid_batches
    interval_cost = one_pass + 3 * t.save  # validation, resume state, 2 checkpoints
    # The real model is built and compiled again (its own first step and
    # first validation pass), is saved at the end, and each final evaluation
    # loads a model and traces anew (measured once, when measured).
    if final_batches is None:
        final_batches = evaluations * valid_batches
    if t.evaluation:
        per_evaluation = max(t.evaluation - one_pass, 0.0)
    else:
        per_evaluation = t.first_eval
    final = (t.save + evaluations * per_evaluation + final_batches * t.eval_batch) * safety
    fixed = (t.first_step + t.first_eval) * safety + final

    def cost(steps, interval):
        return fixed + safety * (steps * t.step + math.ceil(steps / interval) * interval_cost)

    available = seconds_left - fixed
    per_step = safety * (t.step + interval_cost / max(checkpoint_every, 1))
    steps = max(int(available / per_step), 0) if available > 0 else 0
    if steps > checkpoint_every:
        steps -= steps % checkpoint_every
    while steps > 0 and cost(steps, min(checkpoint_every, steps)) > seconds_left:
        steps -= checkpoint_every if steps > checkpoint_every else 1
    if steps < 1:
        raise ValueError(
            f"The time budget leaves {format_duration(max(seconds_left, 0))} after "
            f"the data and tokenizer were ready, and one training step, one "
            f"validation pass ({valid_batches} batches) and the final evaluation "
            f"need about {format_duration(cost(1, 1))} (first step "
            f"{t.first_step:.1f} s, then {t.step * 1000:.0f} ms a step). Expected a "
            f"longer `time_budget`, or fewer validation examples.")
    interval = min(checkpoint_every, steps)
    return Plan(steps=steps, interval=interval, seconds_left=seconds_left,
                training=cost(steps, interval) - final, final=final,
                interval_seconds=safety * (interval * t.step + interval_cost))
