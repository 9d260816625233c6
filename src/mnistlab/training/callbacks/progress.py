"""Progress: a live bar per epoch on a terminal or in a notebook, one plain line per epoch otherwise, or
nothing."""

from __future__ import annotations

import sys
import time

from mnistlab.choices import PROGRESS_MODES
from mnistlab.training.callbacks.base import Callback


def format_logs(logs: dict) -> str:
    parts = [f"loss {logs['loss']:.4f}", f"acc {logs['accuracy']:.4f}"]
    if logs.get("cross_entropy") is not None:  # label smoothing: what the loss would be without it
        parts[0] += f" (label-smoothed; cross-entropy {logs['cross_entropy']:.4f})"
    if logs.get("val_loss") is not None:
        parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
    parts += [f"lr {logs['lr']:.3g}", f"{logs['seconds']:.1f}s", f"{logs['samples_per_s']:,.0f} samples/s"]
    return "  ".join(parts)


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell), where a bar is drawn as HTML in place."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return type(get_ipython()).__name__ == "ZMQInteractiveShell"


class Progress(Callback):
    """mode "auto" picks "notebook" in a Jupyter kernel, "bar" when stderr is a terminal and "plain"
    otherwise, so log files stay clean. The bars read the device-side running metrics only when they redraw
    (a few times a second). The notebook's bar is plain HTML updated in place, so it needs no widgets and
    stays in the saved notebook as each epoch's last line."""

    def __init__(self, mode: str = "auto", refresh_seconds: float = 0.25):
        if mode == "auto":
            mode = "notebook" if in_notebook() else "bar" if sys.stderr.isatty() else "plain"
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode must be one of {', '.join(PROGRESS_MODES)}, got {mode!r}")
        self.mode, self.refresh_seconds = mode, refresh_seconds
        self._bar = None

    def on_epoch_begin(self, trainer, epoch):
        if self.mode == "notebook":
            from IPython.display import HTML, display

            self._started = self._last = time.perf_counter()
            self._cell = display(HTML(_html_bar(epoch, trainer.config.epochs, 0, trainer.steps_per_epoch, "")),
                                 display_id=True)
            return
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
        if self._bar is None and self.mode != "notebook":
            return
        now = time.perf_counter()
        if now - self._last < self.refresh_seconds and step + 1 < trainer.steps_per_epoch:
            return
        self._last = now
        loss, acc, seen = running.read()
        metrics = f"loss {loss:.4f} acc {acc:.4f} {seen / (now - self._started):,.0f} samples/s"
        if self.mode == "notebook":
            from IPython.display import HTML

            self._cell.update(HTML(_html_bar(trainer.epoch + 1, trainer.config.epochs, step + 1,
                                             trainer.steps_per_epoch, metrics)))
        else:
            self._bar.update(self._task, completed=step + 1, metrics=metrics)

    def on_epoch_end(self, trainer, epoch, logs):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.mode == "notebook":
            from IPython.display import HTML

            steps = trainer.steps_per_epoch
            self._cell.update(HTML(_html_bar(epoch, trainer.config.epochs, steps, steps, format_logs(logs))))
        elif self.mode != "quiet":
            print(f"epoch {epoch}/{trainer.config.epochs}  {format_logs(logs)}", file=sys.stderr, flush=True)

    def on_exception(self, trainer, error):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _html_bar(epoch: int, epochs: int, step: int, steps: int, metrics: str) -> str:
    import html

    return (f"<div style='font-family:monospace'>epoch {epoch}/{epochs} <progress value='{step}' max='{steps}' "
            f"style='width:12em'></progress> {step}/{steps} {html.escape(metrics)}</div>")
