"""Shared fixtures. Real data lives where the library looks for it: $MNISTLAB_DATA when set (CI points it at
a shared copy), else the normal cache (~/.cache/mnistlab), where the first use downloads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistlab.data.registry import resolve_data_root

DATA_ROOT = resolve_data_root().resolve()  # read once, before any test changes the environment


@pytest.fixture(autouse=True)
def _data_location(monkeypatch):
    """Every test sees the same data root, whatever a test does to the environment."""
    monkeypatch.setenv("MNISTLAB_DATA", str(DATA_ROOT))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The data root holding mnist/ and fashion-mnist/ as gzipped IDX files (downloaded there if missing)."""
    from mnistlab.data import load_dataset
    from mnistlab.errors import MnistlabError

    for name in ("mnist", "fashion-mnist"):
        try:
            load_dataset(name, data_dir=DATA_ROOT)
        except MnistlabError as e:
            pytest.fail(f"the tests need the real {name}: {e}")
    return DATA_ROOT


@pytest.fixture
def http_mirror():
    """start(directory, handler) serves `directory` on 127.0.0.1 with a SimpleHTTPRequestHandler subclass
    and returns its URL; every server stops after the test."""
    import http.server
    import threading
    from functools import partial

    servers = []

    def start(directory, handler=http.server.SimpleHTTPRequestHandler) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mnist(data_root):
    from mnistlab.data import load_dataset

    return load_dataset("mnist", data_dir=data_root)


@pytest.fixture(scope="session")
def fashion(data_root):
    from mnistlab.data import load_dataset

    return load_dataset("fashion-mnist", data_dir=data_root)


def _train_small(runs_dir, dataset, seed, **overrides):
    from mnistlab.training import build_config, train

    config = build_config(overrides={"dataset": dataset, "model": "keras-cnn", "subset": 20000, "epochs": 2,
                                     "batch_size": 64, "optimizer": "adam", "lr": 2e-3, "seed": seed,
                                     "tensorboard": False, "data_dir": str(DATA_ROOT), **overrides})
    return train(config, runs_dir, progress="quiet")


@pytest.fixture(scope="session")
def mnist_runs(tmp_path_factory, data_root):
    """Two small keras-cnn runs on MNIST (seeds 0 and 1): about 98% test accuracy each."""
    runs_dir = tmp_path_factory.mktemp("runs")
    return [_train_small(runs_dir, "mnist", seed) for seed in (0, 1)]


@pytest.fixture(scope="session")
def fashion_run(tmp_path_factory, data_root):
    """A small keras-cnn run on Fashion-MNIST trained with left-right mirroring, as clothes allow."""
    return _train_small(tmp_path_factory.mktemp("fashion-runs"), "fashion-mnist", 0, augment={"flip": 0.5})
