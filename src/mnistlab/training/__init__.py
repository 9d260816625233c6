"""Training: the device-resident data path, the trainer loop, callbacks and whole runs (settings live in
`mnistlab.settings`)."""

from mnistlab.settings import TrainConfig
from mnistlab.training.pipeline import build_config, prepare_training, resume, train
from mnistlab.training.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "build_config", "prepare_training", "resume", "train"]
