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
