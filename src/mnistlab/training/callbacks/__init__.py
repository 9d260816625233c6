"""Callbacks: hooks into the training loop (Keras-style), with state that survives a resume."""

from mnistlab.training.callbacks.base import Callback, Monitor, TrainerProtocol
from mnistlab.training.callbacks.checkpoint import ModelCheckpoint
from mnistlab.training.callbacks.early_stopping import EarlyStopping
from mnistlab.training.callbacks.history import History
from mnistlab.training.callbacks.progress import Progress
from mnistlab.training.callbacks.reduce_lr import ReduceLROnPlateau
from mnistlab.training.callbacks.tensorboard import TensorBoard

__all__ = ["Callback", "EarlyStopping", "History", "ModelCheckpoint", "Monitor", "Progress", "ReduceLROnPlateau",
           "TensorBoard", "TrainerProtocol"]
