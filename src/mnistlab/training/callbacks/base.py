"""The callback API: a few hooks that receive the trainer and a `logs` dict, and state for resume.

`TrainerProtocol` writes down what a callback may use of the trainer; the `Trainer` has it, and so does the
fake trainer of the callback tests.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from mnistlab.data.splits import DeviceSplits
    from mnistlab.settings import TrainConfig


@runtime_checkable
class TrainerProtocol(Protocol):
    """The members of the trainer that callbacks may read, set or call."""

    config: TrainConfig
    data: DeviceSplits  # the splits on the device (val_x is None without validation)
    epoch: int  # epochs completed
    stop_training: bool  # set True to stop after this epoch
    base_lr: float
    lr_scale: float  # the learning rate is base_lr * lr_scale * the schedule's factor
    best_checkpoint: Path | None  # set it to test that checkpoint instead of the final weights
    log: Callable[[str], None]  # a message for the user (stderr)
    model_meta: dict[str, Any]  # saved with every checkpoint: dataset, class names, the run's folder name ("run")

    @property
    def eval_model(self) -> torch.nn.Module: ...  # what is validated, saved and tested

    @property
    def steps_per_epoch(self) -> int: ...

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, tta: bool = False,
                 fp32: bool = False, shared: bool = True) -> tuple[float, float]: ...

    def save_model(self, path: Path, **meta: Any) -> Path: ...

    def save_training_state(self, path: Path) -> None: ...


class Callback:
    """Override the hooks you need. Stop training with `trainer.stop_training = True`.

    `logs` at epoch end holds: epoch, loss, accuracy, val_loss, val_accuracy (when validating), lr,
    seconds, samples_per_s. `state_dict`/`load_state_dict` carry the callback's state across a resume.

    A run's callbacks are called in order, the caller's just after the run's history, so that the epoch's
    checkpoint saves their state; one with `after_checkpoint = True` is called after the checkpoint instead
    (its state is not saved): for telling something outside (a sweep's scheduler) of a finished epoch, which
    may end the process there.
    """

    after_checkpoint: bool = False

    def on_train_begin(self, trainer: TrainerProtocol) -> None: ...
    def on_epoch_begin(self, trainer: TrainerProtocol, epoch: int) -> None: ...
    def on_batch_end(self, trainer: TrainerProtocol, step: int, running) -> None: ...
    def on_epoch_end(self, trainer: TrainerProtocol, epoch: int, logs: dict[str, float]) -> None: ...
    def on_train_end(self, trainer: TrainerProtocol, logs: dict[str, Any]) -> None: ...
    def on_exception(self, trainer: TrainerProtocol, error: BaseException) -> None: ...

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
