"""Splitting a dataset for training: a seeded hold-out for validation, and the splits moved to the device.

Training, evaluation (`--split val`) and anything else that must agree on which images were held out call
`split_dataset` with a run's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mnistlab.data.dataset import Dataset
from mnistlab.errors import ConfigError


@dataclass
class DeviceSplits:
    """uint8 images (N, H, W) and int64 labels (N,) per split, on the training device; val may be None."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    test_x: torch.Tensor
    test_y: torch.Tensor


def split_dataset(dataset: Dataset, validation: str, val_split: float, seed: int, subset: int,
                  device: torch.device) -> DeviceSplits:
    """Hold out a seeded random `val_split` of train ("split") or its last `val_split` ("last", as Keras's
    validation_split), use the dataset's own validation split ("given", Keras's validation_data), the test
    set ("test"), or none ("none")."""
    x, y = dataset.train_images, dataset.train_labels
    if not len(x):
        raise ConfigError(f"the dataset {dataset.name!r} has no training images (it is one to evaluate on: mnistlab "
                          f"evaluate RUN --dataset {dataset.name}); train on another")
    if subset:
        if subset > len(x):
            raise ConfigError(f"subset {subset} is larger than the {len(x)} training images")
        x, y = x[:subset], y[:subset]
    val_x = val_y = None
    n_val = max(1, int(round(len(x) * val_split)))
    if validation == "split":
        order = np.random.default_rng(seed).permutation(len(x))
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        x, y, val_x, val_y = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    elif validation == "last":
        x, y, val_x, val_y = x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]
    elif validation == "given":
        if dataset.val_images is None:
            raise ConfigError(f"validation = 'given' needs a dataset with its own validation split, and "
                              f"{dataset.name!r} has none; pass validation_data, or use validation = 'split'")
        val_x, val_y = dataset.val_images, dataset.val_labels
    elif validation == "test":
        if not dataset.has_test:
            raise ConfigError(f"validation = 'test' needs a test split, and {dataset.name!r} has none")
        val_x, val_y = dataset.test_images, dataset.test_labels

    def to_device(a, labels=False):
        if a is None:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a))
        return (t.long() if labels else t).to(device)

    return DeviceSplits(to_device(x), to_device(y, True), to_device(val_x), to_device(val_y, True),
                        to_device(dataset.test_images), to_device(dataset.test_labels, True))
