"""The callback API: a few hooks that receive the trainer and a `logs` dict, and state for resume."""

from __future__ import annotations

import math
import warnings
from typing import Any


class Callback:
    """Override the hooks you need. Stop training with `trainer.stop_training = True`.

    `logs` at epoch end holds: epoch, loss, accuracy, val_loss, val_accuracy (when validating), lr,
    seconds, samples_per_s. `state_dict`/`load_state_dict` carry the callback's state across a resume.
    """

    def on_train_begin(self, trainer) -> None: ...
    def on_epoch_begin(self, trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer, step: int, running) -> None: ...
    def on_epoch_end(self, trainer, epoch: int, logs: dict[str, float]) -> None: ...
    def on_train_end(self, trainer, logs: dict[str, Any]) -> None: ...
    def on_exception(self, trainer, error: BaseException) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Monitor:
    """Tracks the best value of one logged metric: the shared logic of early stopping, checkpoints and
    learning-rate reduction. mode "auto" maximizes metrics named like accuracy and minimizes the rest."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be auto, min or max, got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf
        self._warned = False

    def value(self, logs: dict[str, float]) -> float | None:
        value = logs.get(self.monitor)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if not self._warned:
                available = ", ".join(k for k, v in logs.items() if v is not None)
                warnings.warn(f"monitored metric {self.monitor!r} is not available; available: {available}",
                              stacklevel=3)
                self._warned = True
            return None
        return float(value)

    def is_improvement(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, logs: dict[str, float]) -> bool:
        """True (and remember it) when the monitored value in `logs` beats the best so far."""
        value = self.value(logs)
        if value is None or not self.is_improvement(value):
            return False
        self.best = value
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
