"""ModelCheckpoint: save the best model by a monitored metric, and the last state for resuming."""

from __future__ import annotations

from mnistlab.runs import RunFolder
from mnistlab.training.callbacks.base import Callback, Monitor


class ModelCheckpoint(Callback):
    """Writes the run's best checkpoint when the monitored metric improves and, every epoch, its last
    checkpoint and last training state (optimizer, callbacks, epoch) for `--resume` (names: `RunFolder`).

    Without validation data the monitored metric never exists; the last epoch's model is then the best, as
    it always is with the monitor "last".
    Setting `trainer.best_checkpoint` makes the trainer test the best model rather than the last one.
    """

    def __init__(self, run: RunFolder, monitor: str = "val_accuracy", mode: str = "auto"):
        self.run = run
        self.tracker = Monitor(monitor, mode)
        self.best_epoch = None

    def on_epoch_end(self, trainer, epoch, logs):
        last_is_best = self.tracker.monitor == "last" or logs.get(self.tracker.monitor) is None
        if last_is_best or self.tracker.update(logs):
            self.best_epoch = epoch
            trainer.best_checkpoint = trainer.save_model(self.run.checkpoint_path("best"), epoch=epoch, metrics=logs)
        trainer.save_model(self.run.checkpoint_path("last"), epoch=epoch, metrics=logs)
        trainer.save_training_state(self.run.last_state)

    def on_train_begin(self, trainer):
        if self.best_epoch is not None:  # resumed
            trainer.best_checkpoint = self.run.checkpoint_path("best")

    def state_dict(self):
        return {"monitor": self.tracker.state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.tracker.load_state_dict(state["monitor"])
        self.best_epoch = state["best_epoch"]
