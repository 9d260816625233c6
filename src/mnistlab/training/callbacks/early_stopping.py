"""EarlyStopping: stop when a monitored metric has not improved for `patience` epochs."""

from __future__ import annotations

from mnistlab.training.callbacks.base import Callback, Monitor


class EarlyStopping(Callback):
    """With `restore_best_weights`, the model gets back its best epoch's weights when it stops."""

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = True):
        self.tracker = Monitor(monitor, mode, min_delta)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best_weights = None

    def on_epoch_end(self, trainer, epoch, logs):
        if self.tracker.update(logs):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best_weights:
                self.best_weights = {k: v.detach().clone() for k, v in trainer.eval_model.state_dict().items()}
        elif self.tracker.value(logs) is not None:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.stop_training = True
                trainer.log(f"early stopping at epoch {epoch}: {self.tracker.monitor} has not improved for "
                            f"{self.patience} epochs (best {self.tracker.best:.4f} at epoch {self.best_epoch})")
                if self.best_weights is not None:
                    trainer.eval_model.load_state_dict(self.best_weights)
                    trainer.log(f"restored the weights of epoch {self.best_epoch}")

    def state_dict(self):
        return {"monitor": self.tracker.state_dict(), "wait": self.wait, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.tracker.load_state_dict(state["monitor"])
        self.wait, self.best_epoch = state["wait"], state["best_epoch"]
        self.stopped_epoch, self.best_weights = state["stopped_epoch"], state["best_weights"]
