"""Datasets from the user's own arrays and .npz files: every accepted form, and one clear error per bad one."""

import numpy as np
import pytest
import torch

from mnistlab.data import Dataset, load_dataset
from mnistlab.data.arrays import read_arrays, save_arrays
from mnistlab.errors import DataError


@pytest.fixture(scope="module")
def digits(mnist):
    return mnist.train_images[:300], mnist.train_labels[:300]


@pytest.mark.parametrize("form", ["nhw", "n1hw", "flat", "tensor", "float255", "int64", "onehot"])
def test_every_accepted_form_gives_the_same_dataset(digits, form):
    x, y = digits
    images, labels = {
        "nhw": (x, y), "n1hw": (x[:, None], y), "flat": (x.reshape(300, 784), y),
        "tensor": (torch.from_numpy(x), torch.from_numpy(y).long()), "float255": (x.astype(np.float32), y),
        "int64": (x.astype(np.int64), y.astype(np.int64)), "onehot": (x, np.eye(10, dtype=np.float32)[y]),
    }[form]
    dataset = Dataset.from_arrays((images, labels))
    assert dataset.train_images.dtype == np.uint8 and dataset.train_images.shape == (300, 28, 28)
    np.testing.assert_array_equal(dataset.train_images, x)
    np.testing.assert_array_equal(dataset.train_labels, y)
    assert dataset.class_names == tuple(str(c) for c in range(10)) and not dataset.has_test


def test_validation_test_and_class_names(digits):
    x, y = digits
    names = [f"digit {c}" for c in range(10)]
    dataset = Dataset.from_arrays((x[:200], y[:200]), (x[200:250], y[200:250]), (x[250:], y[250:]), names)
    assert len(dataset.val_images) == 50 and len(dataset.test_images) == 50 and dataset.has_test
    assert dataset.class_names[3] == "digit 3"
    assert "50 validation" in repr(dataset)


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.int64), "4 labels for 5 images"),
    (np.zeros((5, 28, 28), np.uint8), np.array([0, 1, 2, 3, -1]), "label -1 is out of range"),
    (np.zeros((5, 28, 28), np.uint8), np.array([0, 1, 2, 3, 0.5]), "not whole numbers"),
    (np.zeros((5, 28, 28), np.uint8), np.array(["a"] * 5), "dtype <U1; give integer class indices"),
    (np.zeros((5, 3, 28, 28), np.uint8), np.zeros(5, np.int64), r"shape \(5, 3, 28, 28\) is not a batch of grey"),
    (np.zeros((5, 780), np.uint8), np.zeros(5, np.int64), "not a square image"),
    (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), "holds no images"),
    (np.full((5, 28, 28), 0.5, np.float32), np.zeros(5, np.int64), "look already scaled.*x \\* 255"),
    (np.full((5, 28, 28), np.nan, np.float32), np.zeros(5, np.int64), "NaN or infinite"),
    (np.full((5, 28, 28), 300.0), np.zeros(5, np.int64), "run from 300 to 300; give values 0-255"),
    (np.array([["a"] * 784] * 5), np.zeros(5, np.int64), "dtype <U1 is not a picture"),
])
def test_bad_arrays_get_one_clear_error(images, labels, message):
    with pytest.raises(DataError, match=message):
        Dataset.from_arrays((images, labels))


def test_bad_splits_and_names(digits):
    x, y = digits
    with pytest.raises(DataError, match="validation images: images of 14x14 pixels, where the training images are 28"):
        Dataset.from_arrays((x, y), (x[:10, ::2, ::2], y[:10]))
    with pytest.raises(DataError, match="label 9 is out of range; labels are class indices 0 to 2, one per class"):
        Dataset.from_arrays((x, y), class_names=["a", "b", "c"])
    with pytest.raises(DataError, match="must name each class once"):
        Dataset.from_arrays((x, y), class_names=["a"] * 10)
    with pytest.raises(DataError, match="the val data must be a pair"):
        Dataset.from_arrays((x, y), x)
    with pytest.raises(DataError, match="has no test split"):
        Dataset.from_arrays((x, y)).split("test")


def test_npz_round_trip_and_keras_layout(tmp_path, digits):
    x, y = digits
    dataset = Dataset.from_arrays((x[:200], y[:200]), (x[200:], y[200:]), class_names=list("abcdefghij"))
    path = save_arrays(dataset, tmp_path / "mine.npz")
    again = load_dataset(path)
    assert again.name == "arrays" and again.class_names == dataset.class_names and not again.has_test
    np.testing.assert_array_equal(again.val_images, x[200:])
    # Keras's mnist.npz: x_train, y_train, x_test, y_test
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:50], y_test=y[:50])
    keras = load_dataset(str(tmp_path / "mnist.npz"))
    assert keras.has_test and len(keras.test_images) == 50 and keras.val_images is None


def test_bad_npz_files(tmp_path, digits):
    x, y = digits
    np.savez(tmp_path / "half.npz", x_train=x)
    with pytest.raises(DataError, match="lacks y_train .*needs x_train and y_train"):
        read_arrays(tmp_path / "half.npz")
    np.savez(tmp_path / "odd.npz", x_train=x, y_train=y, x_val=x)
    with pytest.raises(DataError, match="one of x_val and y_val without the other"):
        read_arrays(tmp_path / "odd.npz")
    np.savez(tmp_path / "pickled.npz", x_train=np.array([object()], dtype=object), y_train=y)
    with pytest.raises(DataError, match="not a readable .npz"):  # object arrays would unpickle: refused
        read_arrays(tmp_path / "pickled.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz: not a readable .npz"):
        read_arrays(tmp_path / "junk.npz")
    with pytest.raises(DataError, match="no such file"):
        read_arrays(tmp_path / "absent.npz")
    np.savez(tmp_path / "wrong.npz", x_train=x, y_train=y[:10])
    with pytest.raises(DataError, match="wrong.npz: training labels: 10 labels for 300 images"):
        read_arrays(tmp_path / "wrong.npz")
