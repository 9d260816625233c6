"""ReduceLROnPlateau: multiply the learning rate by `factor` when a metric stops improving."""

from __future__ import annotations

from mnistlab.training.callbacks.base import Callback, Monitor


class ReduceLROnPlateau(Callback):
    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_lr: float = 0.0,
                 min_delta: float = 1e-4, mode: str = "auto"):
        if not 0 < factor < 1:
            raise ValueError("ReduceLROnPlateau factor must be between 0 and 1")
        self.tracker = Monitor(monitor, mode, min_delta)
        self.factor, self.patience, self.min_lr = factor, patience, min_lr
        self.wait = 0

    def on_epoch_end(self, trainer, epoch, logs):
        if self.tracker.update(logs):
            self.wait = 0
        elif self.tracker.value(logs) is not None:
            self.wait += 1
            if self.wait >= self.patience:
                self.wait = 0
                old = trainer.base_lr * trainer.lr_scale
                new = max(old * self.factor, self.min_lr)
                if new < old:
                    trainer.lr_scale = new / trainer.base_lr
                    trainer.log(f"epoch {epoch}: {self.tracker.monitor} has not improved for {self.patience} "
                                f"epochs; learning rate {old:.3g} -> {new:.3g}")

    def state_dict(self):
        return {"monitor": self.tracker.state_dict(), "wait": self.wait}

    def load_state_dict(self, state):
        self.tracker.load_state_dict(state["monitor"])
        self.wait = state["wait"]
