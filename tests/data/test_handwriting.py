"""Real handwriting from outside MNIST (uci-digits): what it holds, that it is brought to MNIST's form, and
that it is for evaluating, not training."""

import builtins

import numpy as np
import pytest

from mnistlab.data import load_dataset
from mnistlab.errors import ConfigError, DataError
from mnistlab.training import build_config, train


@pytest.fixture(scope="module")
def uci():
    return load_dataset("uci-digits")


def test_uci_digits_in_mnist_form(uci):
    assert uci.test_images.shape == (1797, 28, 28) and uci.test_images.dtype == np.uint8
    assert len(uci.train_images) == 0 and uci.class_names == tuple("0123456789")
    assert np.bincount(uci.test_labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # as MNIST's: light ink on black, boxed to 20x20 and centred by mass in 28x28 (NIST stretched these digits
    # to fill their box, so they are tall: centring moves some up to row 1, none wraps round to row 0)
    images = uci.test_images.astype(np.float64)
    assert (images.max(axis=(1, 2)) >= 230).all()
    assert images[:, [0, -1]].max() == 0 and images[:, :, :3].max() == 0 and images[:, :, -3:].max() == 0
    grid = np.arange(28)
    rows = (images.sum(axis=2) * grid).sum(axis=1) / images.sum(axis=(1, 2))
    assert np.abs(rows - 13.5).max() <= 1.0
    assert uci.source.is_file()


def test_uci_digits_are_for_evaluation(uci, tmp_path):
    with pytest.raises(ConfigError, match="no training images.*evaluate RUN --dataset uci-digits"):
        train(build_config(overrides={"dataset": "uci-digits", "epochs": 1}), tmp_path, progress="quiet")
    assert not any(tmp_path.iterdir())


def test_uci_digits_without_scikit_learn(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DataError, match=r"comes with scikit-learn.*pip install 'mnistlab\[handwriting\]'"):
        load_dataset("uci-digits")
