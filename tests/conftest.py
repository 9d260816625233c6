"""Shared fixtures. Real data comes from $MNISTLAB_DATA, or ../shared/data beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MNISTLAB_DATA") or REPO.parent / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _data_location(monkeypatch):
    """Every test sees the shared data and never a developer's own cache."""
    monkeypatch.setenv("MNISTLAB_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.fail(f"the shared MNIST is not at {SHARED_DATA}; set MNISTLAB_DATA to the folder holding mnist/")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist(shared_data):
    from mnistlab.data import load_dataset

    return load_dataset("mnist", data_dir=SHARED_DATA)


@pytest.fixture(scope="session")
def fashion(shared_data):
    from mnistlab.data import load_dataset

    return load_dataset("fashion-mnist", data_dir=SHARED_DATA)


def _train_small(runs_dir, dataset, seed, **overrides):
    from mnistlab.training import build_config, train

    config = build_config(overrides={"dataset": dataset, "model": "keras-cnn", "subset": 20000, "epochs": 2,
                                     "batch_size": 64, "optimizer": "adam", "lr": 2e-3, "seed": seed,
                                     "tensorboard": False, "data_dir": str(SHARED_DATA), **overrides})
    return train(config, runs_dir, progress="quiet")


@pytest.fixture(scope="session")
def mnist_runs(tmp_path_factory, shared_data):
    """Two small keras-cnn runs on MNIST (seeds 0 and 1): about 98% test accuracy each."""
    runs_dir = tmp_path_factory.mktemp("runs")
    return [_train_small(runs_dir, "mnist", seed) for seed in (0, 1)]


@pytest.fixture(scope="session")
def fashion_run(tmp_path_factory, shared_data):
    """A small keras-cnn run on Fashion-MNIST trained with left-right mirroring, as clothes allow."""
    return _train_small(tmp_path_factory.mktemp("fashion-runs"), "fashion-mnist", 0, augment={"flip": 0.5})
