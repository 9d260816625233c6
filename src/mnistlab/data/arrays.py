"""A dataset from the user's own arrays (numpy or torch), or from an .npz file of them, checked once.

Arrays are what every tutorial has in hand: `(x_train, y_train)`, perhaps Keras's `validation_data` and a
test set. Images may be (N, H, W), (N, 1, H, W) or (N, H*W) for square images; uint8, an integer type, or
float with pixel values 0-255 (rounded to uint8, the dtype every dataset is held in). Labels are integers
0..classes-1, shape (N,) or one-hot (N, classes).

An .npz file holds the same arrays under Keras's names (`x_train`, `y_train`, `x_test`, `y_test`, as in its
mnist.npz), plus `x_val`/`y_val`, `class_names` and `name` if wanted. `save_arrays` writes one; a run trained on
arrays keeps its data that way, so it can be resumed and evaluated later.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mnistlab._io import atomic_write
from mnistlab.errors import DataError

ARRAY_SPLITS = ("train", "val", "test")


def _as_numpy(array: Any, what: str) -> np.ndarray:
    if hasattr(array, "detach") and hasattr(array, "cpu"):  # a torch tensor, on any device
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot be read as an array ({e}); give a numpy array or a torch tensor") from None


def check_images(images: Any, what: str, image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """`images` as uint8 (N, H, W), or a DataError that says what is wrong with them and what to give."""
    x = _as_numpy(images, what)
    accepted = "(N, H, W), (N, 1, H, W) or (N, H*W)"
    if x.dtype.kind not in "uif" and x.dtype != np.bool_:
        raise DataError(f"{what}: dtype {x.dtype} is not a picture; give uint8, integers or floats 0-255")
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    elif x.ndim == 2:
        side = math.isqrt(x.shape[1])
        wanted = image_shape or (side, side)
        if x.shape[1] != wanted[0] * wanted[1]:
            raise DataError(f"{what}: shape {x.shape} has rows of {x.shape[1]} values, not a square image; "
                            f"give {accepted}")
        x = x.reshape(len(x), *wanted)
    if x.ndim != 3:
        raise DataError(f"{what}: shape {x.shape} is not a batch of grey images; give {accepted}")
    if image_shape is not None and x.shape[1:] != tuple(image_shape):
        raise DataError(f"{what}: images of {x.shape[1]}x{x.shape[2]} pixels, where the training images are "
                        f"{image_shape[0]}x{image_shape[1]}")
    if len(x) == 0 or 0 in x.shape[1:]:
        raise DataError(f"{what}: holds no images (shape {x.shape})")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DataError(f"{what}: holds NaN or infinite values; give pixel values 0-255")
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 255:
        raise DataError(f"{what}: pixel values run from {low:g} to {high:g}; give values 0-255 (0 the background)")
    if x.dtype.kind == "f" and high <= 1.0:
        raise DataError(f"{what}: float pixels all within 0-1 look already scaled; mnistlab takes raw pixels 0-255 "
                        "and normalizes inside the model (so predictions need no preprocessing): pass the "
                        "unscaled array, or x * 255")
    return np.rint(x).astype(np.uint8) if x.dtype.kind == "f" else x.astype(np.uint8)


def check_labels(labels: Any, count: int, num_classes: int | None, what: str) -> np.ndarray:
    """Class indices as uint8 (N,), from integers (N,) or one-hot rows (N, classes)."""
    y = _as_numpy(labels, what)
    if y.ndim == 2 and y.shape[1] > 1 and y.shape[0] == count:  # one-hot, as keras.utils.to_categorical
        if num_classes is not None and y.shape[1] != num_classes:
            raise DataError(f"{what}: one-hot rows of {y.shape[1]} classes, where there are {num_classes}")
        y = y.argmax(1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{what}: shape {y.shape}; give class indices (N,) or one-hot rows (N, classes)")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError(f"{what}: holds values that are not whole numbers; give class indices 0, 1, 2, ...")
    elif y.dtype.kind not in "ui":
        raise DataError(f"{what}: dtype {y.dtype}; give integer class indices")
    if len(y) != count:
        raise DataError(f"{what}: {len(y):,} labels for {count:,} images; give one label per image")
    low, high = int(y.min()), int(y.max())
    top = (num_classes or 256) - 1
    if low < 0 or high > top:
        bad = low if low < 0 else high
        raise DataError(f"{what}: label {bad} is out of range; labels are class indices 0 to {top}"
                        + ("" if num_classes else " (at most 256 classes)")
                        + (f", one per class name ({num_classes})" if num_classes else ""))
    return y.astype(np.uint8)


def check_arrays(train: tuple[Any, Any], validation: tuple[Any, Any] | None = None,
                 test: tuple[Any, Any] | None = None, class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """(images, labels) pairs, each checked, as the fields of a `Dataset` (`Dataset.from_arrays`). Without
    `test` there is no test split (0 images); class names default to the label values."""
    pairs = {"train": train, "val": validation, "test": test}
    for split, pair in pairs.items():
        if pair is not None and (not isinstance(pair, (tuple, list)) or len(pair) != 2):
            raise DataError(f"the {split} data must be a pair (images, labels), got {type(pair).__name__}")
    if class_names is not None:
        class_names = tuple(str(n) for n in class_names)
        if not class_names or len(set(class_names)) != len(class_names):
            raise DataError(f"class_names {list(class_names)} must name each class once")
    images = check_images(train[0], "training images")
    shape = images.shape[1:]
    arrays = {"train": (images, check_labels(train[1], len(images), len(class_names or ()) or None,
                                             "training labels"))}
    for split in ("val", "test"):
        if pairs[split] is None:
            continue
        what = {"val": "validation", "test": "test"}[split]
        x = check_images(pairs[split][0], f"{what} images", shape)
        arrays[split] = (x, check_labels(pairs[split][1], len(x), len(class_names or ()) or None, f"{what} labels"))
    if class_names is None:
        top = max(int(y.max()) for _, y in arrays.values())
        class_names = tuple(str(c) for c in range(top + 1))
    empty = (np.zeros((0, *shape), np.uint8), np.zeros(0, np.uint8))
    val = arrays.get("val", (None, None))
    return {"train_images": arrays["train"][0], "train_labels": arrays["train"][1],
            "test_images": arrays.get("test", empty)[0], "test_labels": arrays.get("test", empty)[1],
            "val_images": val[0], "val_labels": val[1], "class_names": class_names}


def save_arrays(dataset: Any, path: str | os.PathLike) -> Path:
    """Write a `Dataset`'s arrays to an .npz file (Keras's names, compressed), atomically."""
    arrays = {"x_train": dataset.train_images, "y_train": dataset.train_labels,
              "class_names": np.array(dataset.class_names, dtype=str), "name": np.array(dataset.name, dtype=str)}
    if len(dataset.test_images):
        arrays.update(x_test=dataset.test_images, y_test=dataset.test_labels)
    if dataset.val_images is not None:
        arrays.update(x_val=dataset.val_images, y_val=dataset.val_labels)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_write(Path(path)) as f:
        f.write(buffer.getvalue())
    return Path(path)


def read_arrays(path: str | os.PathLike) -> dict[str, Any]:
    """The checked arrays of an .npz file with `x_train`, `y_train` and optionally `x_val`/`y_val`,
    `x_test`/`y_test`, `class_names` and `name` (Keras's mnist.npz is one), as `check_arrays` gives them,
    and the dataset's name (else the file's). Reading runs no code (no pickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            found = {key: f[key] for key in f.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file of arrays ({e})") from None
    missing = [key for key in ("x_train", "y_train") if key not in found]
    if missing:
        raise DataError(f"{path}: lacks {', '.join(missing)} (it holds {', '.join(found) or 'nothing'}); an .npz "
                        "dataset needs x_train and y_train, and may add x_val/y_val, x_test/y_test, class_names")
    for split in ("val", "test"):
        if (f"x_{split}" in found) != (f"y_{split}" in found):
            raise DataError(f"{path}: has one of x_{split} and y_{split} without the other")

    def pair(split: str):
        return (found[f"x_{split}"], found[f"y_{split}"]) if f"x_{split}" in found else None

    names = [str(n) for n in found["class_names"].tolist()] if "class_names" in found else None
    try:
        fields = check_arrays(pair("train"), pair("val"), pair("test"), names)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    return {**fields, "name": str(found["name"]) if "name" in found else path.stem}
