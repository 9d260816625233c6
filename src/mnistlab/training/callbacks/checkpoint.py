"""ModelCheckpoint: save the best model by a monitored metric, and the last state for resuming."""

from __future__ import annotations

from pathlib import Path

from mnistlab.training.callbacks.base import Callback, Monitor


class ModelCheckpoint(Callback):
    """Writes `best.safetensors`/`best.json` when the monitored metric improves and, every epoch,
    `last.safetensors`/`last.json` plus `last-state.pt` (optimizer, callbacks, epoch) for `--resume`.

    Without validation data the monitored metric never exists; the last epoch's model is then the best.
    Setting `trainer.best_checkpoint` makes the trainer test the best model rather than the last one.
    """

    def __init__(self, directory: str | Path, monitor: str = "val_accuracy", mode: str = "auto"):
        self.directory = Path(directory)
        self.tracker = Monitor(monitor, mode)
        self.best_epoch = None

    def on_epoch_end(self, trainer, epoch, logs):
        no_monitor = logs.get(self.tracker.monitor) is None
        if no_monitor or self.tracker.update(logs):
            self.best_epoch = epoch
            trainer.best_checkpoint = trainer.save_model(self.directory / "best", epoch=epoch, metrics=logs)
        trainer.save_model(self.directory / "last", epoch=epoch, metrics=logs)
        trainer.save_training_state(self.directory / "last-state.pt")

    def on_train_begin(self, trainer):
        if self.best_epoch is not None:  # resumed
            trainer.best_checkpoint = self.directory / "best.safetensors"

    def state_dict(self):
        return {"monitor": self.tracker.state_dict(), "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.tracker.load_state_dict(state["monitor"])
        self.best_epoch = state["best_epoch"]
