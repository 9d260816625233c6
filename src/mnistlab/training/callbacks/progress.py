"""Progress: a live bar per epoch on a terminal, one plain line per epoch otherwise, or nothing."""

from __future__ import annotations

import sys
import time

from mnistlab.choices import PROGRESS_MODES
from mnistlab.training.callbacks.base import Callback


def format_logs(logs: dict) -> str:
    parts = [f"loss {logs['loss']:.4f}", f"acc {logs['accuracy']:.4f}"]
    if logs.get("val_loss") is not None:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts += [f"lr {logs['lr']:.3g}", f"{logs['seconds']:.1f}s", f"{logs['samples_per_s']:,.0f} samples/s"]
    return "  ".join(parts)


class Progress(Callback):
    """mode "auto" picks "bar" when stderr is a terminal and "plain" otherwise, so log files stay clean.
    The bar reads the device-side running metrics only when it redraws (a few times a second)."""

    def __init__(self, mode: str = "auto", refresh_seconds: float = 0.25):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode must be one of {', '.join(PROGRESS_MODES)}, got {mode!r}")
        self.mode, self.refresh_seconds = mode, refresh_seconds
        self._bar = None

    def on_epoch_begin(self, trainer, epoch):
        if self.mode != "bar":
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn(f"epoch {epoch}/{trainer.config.epochs}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn("{task.fields[metrics]}"), TimeRemainingColumn(),
                             transient=True)
        self._task = self._bar.add_task("", total=trainer.steps_per_epoch, metrics="")
        self._bar.start()
        self._started = self._last = time.perf_counter()

    def on_batch_end(self, trainer, step, running):
        if self._bar is None:
            return
        now = time.perf_counter()
        if now - self._last < self.refresh_seconds and step + 1 < trainer.steps_per_epoch:
            return
        self._last = now
        loss, acc, seen = running.read()
        self._bar.update(self._task, completed=step + 1,
                         metrics=f"loss {loss:.4f} acc {acc:.4f} {seen / (now - self._started):,.0f} samples/s")

    def on_epoch_end(self, trainer, epoch, logs):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.mode != "quiet":
            print(f"epoch {epoch}/{trainer.config.epochs}  {format_logs(logs)}", file=sys.stderr, flush=True)

    def on_exception(self, trainer, error):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
