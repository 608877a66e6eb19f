"""Callbacks of the training workflow: progress, step log, NaN guard, backup."""

import csv
import math
import os
import sys
import time

import keras

from keraslm.training.budget import format_duration as _duration


class StepLog(keras.callbacks.Callback):
    """Appends `step,loss,learning_rate` for every optimizer step to a CSV.

    Keras reports the running mean of the loss since the start of the epoch
    (here: the checkpoint interval); the loss of each step is recovered from
    two consecutive means, `t * m_t - (t - 1) * m_(t-1)`. Resumed runs append
    to the same file, so it shows where a run restarted (the steps redone
    after the last checkpoint appear twice).
    """

    def __init__(self, path, start_step=0):
        super().__init__()
        self.path = path
        self.step = start_step
        self.previous_mean = 0.0

    def on_train_begin(self, logs=None):
        new = not os.path.exists(self.path)
        self.handle = open(self.path, "a", newline="")
        self.writer = csv.writer(self.handle)
        if new:
            self.writer.writerow(["step", "loss", "learning_rate"])

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        mean = float((logs or {}).get("loss", math.nan))
        loss = mean if batch == 0 else (batch + 1) * mean - batch * self.previous_mean
        self.previous_mean = mean
        rate = self.model.optimizer.learning_rate
        self.writer.writerow([self.step, loss, float(keras.ops.convert_to_numpy(rate))])
        self.handle.flush()

    def on_train_end(self, logs=None):
        self.handle.close()


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first NaN/Inf loss and remembers where."""

    def __init__(self, start_step=0):
        super().__init__()
        self.step = start_step
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = self.step
            self.model.stop_training = True


class RunBackup(keras.callbacks.Callback):
    """The resume state after every checkpoint interval, never after a NaN.

    `RunDirectory.write_backup`: weights and optimizer state written
    atomically, the previous state kept until the new one is complete. The
    trainer restores it before `fit` (`RunDirectory.backups()`), falling back
    to the previous state when the newest is damaged.

    Args:
        run: the `RunDirectory`.
        nan_guard: the run's `NaNGuard`.
        interval_steps: int. Steps per checkpoint interval.
    """

    def __init__(self, run, nan_guard, interval_steps):
        super().__init__()
        self.run = run
        self.nan_guard = nan_guard
        self.interval_steps = interval_steps

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_guard.bad_step is None:
            self.run.write_backup(self.model, epoch + 1,
                                  step=(epoch + 1) * self.interval_steps)


class Interrupt(keras.callbacks.Callback):
    """Ctrl-C that loses no step: the state of the current step, then stop.

    While training, the first SIGINT only sets a flag (and says so); at the
    end of the step in progress this callback writes a resume state of
    exactly that step (`RunDirectory.write_backup(step=...)`, atomic) and
    raises `KeyboardInterrupt`, so `--resume` repeats no step. During
    validation or a checkpoint write the flag waits for it to finish. A
    second Ctrl-C stops at once (the last complete state is kept).

    Use it as a context manager around `fit` (it installs the handler in the
    main thread only, and restores the previous one on exit).

    Args:
        run: the `RunDirectory`.
        start_step: int. Steps done before this `fit`.
        interval_steps: int. Steps per checkpoint interval.
        stream: where the notice goes. Defaults to stderr.
    """

    def __init__(self, run, start_step, interval_steps, stream=None):
        super().__init__()
        self.run = run
        self.step = start_step
        self.interval_steps = interval_steps
        self.stream = stream or sys.stderr
        self.requested = False
        self.saved_step = None
        self._previous = None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        return False

    def _handle(self, signum, frame):
        import signal

        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        print("\n[interrupt] saving the state of the current step, then stopping "
              "(Ctrl-C again to stop at once, keeping the last complete state)",
              file=self.stream, flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.requested and self.step % self.interval_steps:
            self.stop(self.step)  # at an interval's end: its validation first

    def on_epoch_end(self, epoch, logs=None):
        if self.requested:  # during validation: the interval's state is written
            self.stop(self.step, write=False)

    def stop(self, step, write=True):
        if write:
            self.run.write_backup(self.model, step // self.interval_steps, step=step)
        self.saved_step = step
        raise KeyboardInterrupt


class SafeModelCheckpoint(keras.callbacks.Callback):
    """Saves the model after every interval, atomically, unless the loss
    became NaN; with `monitor`, only when it improves on the best so far.

    Args:
        filepath: str. A `.keras` path (written through a temporary file).
        nan_guard: the run's `NaNGuard`.
        monitor: str or None. A log key to minimize (`"val_loss"`).
        initial_value_threshold: float or None. The best value of earlier
            sessions of a resumed run.
    """

    def __init__(self, filepath, nan_guard, monitor=None, initial_value_threshold=None):
        super().__init__()
        self.filepath = filepath
        self.nan_guard = nan_guard
        self.monitor = monitor
        self.best = math.inf if initial_value_threshold is None else initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        from keraslm.training.run_directory import atomic_path

        if self.nan_guard.bad_step is not None:
            return
        if self.monitor is not None:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)) or value >= self.best:
                return
            self.best = float(value)
        with atomic_path(self.filepath, ".keras") as partial:
            self.model.save(partial)


class BudgetGuard(keras.callbacks.Callback):
    """Stops training at an interval's end when one more interval and the
    final evaluation would end after the time budget's deadline.

    The planned steps fit the budget as measured; this holds it when the
    machine turns out slower (another job, a validation pass slower than
    measured). `stopped_at` is the step training stopped at, or None.
    """

    def __init__(self, deadline, final_seconds, interval_seconds, start_step=0,
                 total_steps=None):
        super().__init__()
        self.deadline = deadline  # time.monotonic()
        self.final_seconds = final_seconds
        self.planned_interval = max(interval_seconds, 1e-3)
        self.slowdown = 1.0  # the last timed interval over the planned one
        self.step = start_step
        self.stopped_at = None
        self.intervals = 0
        self.total_steps = total_steps
        self.last_interval_end = None  # time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.began = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        now = self.last_interval_end = time.monotonic()
        self.intervals += 1
        # The first interval of a process also traces and compiles: the
        # next one is expected to take what was planned until one is timed.
        # A machine slower than measured makes the final evaluation slower
        # by as much.
        if self.intervals > 1:
            self.slowdown = max((now - self.began) / self.planned_interval, 1.0)
        expected = self.planned_interval * self.slowdown
        final = self.final_seconds * self.slowdown
        last = self.total_steps is not None and self.step >= self.total_steps
        if not last and now + expected + final > self.deadline:
            self.stopped_at = self.step
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """One line per checkpoint interval: step, losses, tokens/s, ETA.

    On a terminal, a bar between those lines is redrawn in place (at most
    four times a second): `[#####.....] step 120/800 | 14,210 tok/s | ETA 58s`.
    Elsewhere (a log file, a pipe) only the interval lines are written.
    """

    BAR_WIDTH = 24
    BAR_EVERY = 0.25  # seconds between redraws

    def __init__(self, total_steps, interval_steps, tokens_per_step, start_step=0,
                 stream=None, deadline=None):
        super().__init__()
        self.deadline = deadline  # time.monotonic() when a time budget ends
        self.total_steps = total_steps
        self.interval_steps = interval_steps
        self.tokens_per_step = tokens_per_step
        self.step = start_step
        self.stream = stream or sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._drawn = 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.start_step = self.step

    def _rate(self):
        elapsed = time.perf_counter() - self.start
        done = self.step - self.start_step
        return done / elapsed if elapsed and done else 0.0

    def _bar(self):
        filled = int(self.BAR_WIDTH * self.step / max(self.total_steps, 1))
        rate = self._rate()
        remaining = (self.total_steps - self.step) / rate if rate else math.nan
        return (f"[{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] step "
                f"{self.step}/{self.total_steps} | {rate * self.tokens_per_step:,.0f} "
                f"tok/s | ETA {_duration(remaining)}")

    def on_epoch_begin(self, epoch, logs=None):
        self.interval_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        now = time.perf_counter()
        if self.live and now - self._drawn >= self.BAR_EVERY:
            self._drawn = now
            self.stream.write("\r" + self._bar())
            self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        rate = self._rate()
        remaining = (self.total_steps - self.step) / rate if rate else math.nan
        parts = [f"step {self.step}/{self.total_steps}"]
        for key in ("loss", "val_loss"):
            if key in logs:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{rate * self.tokens_per_step:,.0f} tok/s")
        parts.append(f"ETA {_duration(remaining)}")
        if self.deadline is not None:
            parts.append(f"budget left {_duration(max(self.deadline - time.monotonic(), 0))}")
        clear = "\r\033[K" if self.live else ""  # the bar's line, erased
        print(clear + " | ".join(parts), file=self.stream, flush=True)
