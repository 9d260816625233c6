"""Callback logic with fake values: no training needed."""

import warnings

import pytest
import torch

from mnistlab.runs import HISTORY_COLUMNS as COLUMNS
from mnistlab.runs import RunFolder, read_history_csv
from mnistlab.settings import TrainConfig
from mnistlab.training.callbacks import (
    EarlyStopping,
    History,
    ModelCheckpoint,
    Monitor,
    ReduceLROnPlateau,
    TrainerProtocol,
)


class FakeTrainer:
    """What callbacks may use of a trainer (TrainerProtocol), over fake values."""

    steps_per_epoch = 10

    def __init__(self):
        self.config, self.data, self.epoch = TrainConfig(), None, 0
        self.stop_training = False
        self.base_lr, self.lr_scale = 0.1, 1.0
        self.messages, self.saved, self.loaded = [], [], []
        self.best_checkpoint = None
        self.model = self.eval_model = self
        self.model_meta = {"run": "mnist-mlp-1"}

    def evaluate(self, images, labels, tta=False, fp32=False, shared=True):
        return 0.5, 0.9

    # the model API EarlyStopping needs
    def state_dict(self):
        return {"w": torch.tensor(self.epoch)}

    def load_state_dict(self, state):
        self.loaded.append(state)

    def log(self, message):
        self.messages.append(message)

    def save_model(self, path, **meta):
        self.saved.append((path.stem, meta["epoch"]))
        return path

    def save_training_state(self, path):
        self.saved.append((path.stem, None))


def test_the_fake_trainer_has_what_callbacks_may_use():
    assert isinstance(FakeTrainer(), TrainerProtocol)


def feed(callback, values, key="val_loss", trainer=None):
    trainer = trainer or FakeTrainer()
    for epoch, value in enumerate(values, 1):
        trainer.epoch = epoch
        callback.on_epoch_end(trainer, epoch, {key: value, "loss": 1.0})
        if trainer.stop_training:
            break
    return trainer, epoch


def test_monitor_modes_and_min_delta():
    assert Monitor("val_accuracy").mode == "max" and Monitor("val_loss").mode == "min"
    m = Monitor("val_loss", min_delta=0.1)
    assert m.update({"val_loss": 1.0}) and not m.update({"val_loss": 0.95}) and m.update({"val_loss": 0.85})


def test_missing_metric_warns_once_and_lists_what_exists():
    m = Monitor("val_acc")
    with pytest.warns(UserWarning, match="'val_acc' is not available; available: loss, val_loss"):
        assert not m.update({"loss": 1.0, "val_loss": 2.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.update({"loss": 1.0})


def test_early_stopping_waits_patience_then_restores_best():
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    trainer, stopped = feed(stopper, [1.0, 0.5, 0.6, 0.7, 0.1])
    assert stopped == 4 and trainer.stop_training and stopper.best_epoch == 2
    assert [s["w"].item() for s in trainer.loaded] == [2] and "early stopping at epoch 4" in trainer.messages[0]


def test_early_stopping_min_delta_and_max_mode():
    stopper = EarlyStopping("val_accuracy", patience=1, min_delta=0.01)
    _, stopped = feed(stopper, [0.90, 0.905, 0.95], key="val_accuracy")
    assert stopped == 2


def test_early_stopping_state_round_trip():
    a = EarlyStopping(patience=3)
    feed(a, [1.0, 1.1])
    b = EarlyStopping(patience=3)
    b.load_state_dict(a.state_dict())
    trainer, stopped = feed(b, [1.2, 1.3])
    assert stopped == 2 and trainer.stop_training and b.best_epoch == 1  # waited 1 epoch before the resume


def test_reduce_lr_on_plateau_steps_down_to_min_lr():
    reducer = ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.03)
    trainer, _ = feed(reducer, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert trainer.base_lr * trainer.lr_scale == pytest.approx(0.03)
    assert len(trainer.messages) == 2  # 0.1 -> 0.05 -> 0.03, then nothing more to do


def test_checkpoint_saves_best_and_last(tmp_path):
    checkpoint = ModelCheckpoint(RunFolder(tmp_path), "val_accuracy")
    trainer, _ = feed(checkpoint, [0.9, 0.95, 0.93], key="val_accuracy")
    best = [epoch for name, epoch in trainer.saved if name == "best"]
    assert best == [1, 2] and checkpoint.best_epoch == 2
    assert [e for n, e in trainer.saved if n == "last"] == [1, 2, 3]


def test_checkpoint_monitor_last_keeps_the_last_epoch_as_keras_does_without_one(tmp_path):
    checkpoint = ModelCheckpoint(RunFolder(tmp_path), "last")
    trainer, _ = feed(checkpoint, [0.9, 0.95, 0.93], key="val_accuracy")
    assert [e for n, e in trainer.saved if n == "best"] == [1, 2, 3] and checkpoint.best_epoch == 3


def test_history_writes_the_csv_columns(tmp_path):
    history = History(RunFolder(tmp_path))
    logs = {"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": None, "val_accuracy": None, "lr": 0.1,
            "seconds": 2.0, "samples_per_s": 100.0}
    history.on_epoch_end(None, 1, logs)
    assert (tmp_path / "history.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert read_history_csv(tmp_path / "history.csv")[0]["val_loss"] is None
