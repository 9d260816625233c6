"""A dataset of one's own pictures: one sub-folder per class, the layout teachers use for handwriting.

    my-digits/
        train/<class name>/*.png (JPEG, BMP, ...)
        test/<class name>/*.png      optional: without it, a seeded tenth of train/ is the test set

Every picture goes through the same MNIST-style preprocessing that `predict` applies (`data/inputs.py`),
once: the arrays are cached in the folder (`.mnistlab-cache.npz`) and read again only when a picture is
added, removed or changed. A picture that cannot be read is named in a warning and left out; a class
folder with no picture is an error.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from mnistlab._io import atomic_write
from mnistlab.data.inputs import IMAGE_SUFFIXES, preprocess_digit, read_image
from mnistlab.errors import DataError

CACHE_FILE = ".mnistlab-cache.npz"
HELD_OUT = 0.1  # of train/, as the test set when there is no test/ folder
IMAGE_SIZE = 28


def is_picture_folder(folder: Path) -> bool:
    """Whether `folder` has the class-folder layout (a train/ folder of class folders)."""
    train = folder / "train"
    return train.is_dir() and any(p.is_dir() for p in train.iterdir())


def _pictures(split_dir: Path, classes: list[str]) -> list[tuple[Path, int]]:
    found = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and
                       not p.name.startswith(".")) if class_dir.is_dir() else []
        if not files:
            raise DataError(f"{class_dir}: the class folder holds no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            "add some, or remove the folder")
        found += [(f, label) for f in files]
    return found


def _read(pictures: list[tuple[Path, int]], problems: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path, label in pictures:
        try:
            images.append(preprocess_digit(read_image(path.read_bytes(), str(path)), IMAGE_SIZE))
            labels.append(label)
        except (DataError, OSError) as e:
            problems.append(str(e) if str(path) in str(e) else f"{path}: {e}")
    return (np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
            np.asarray(labels, np.uint8))


def _fingerprint(pictures: list[tuple[Path, int]], root: Path) -> str:
    """What the cache was made from: each picture's path, class, size and modification time."""
    return "\n".join(f"{p.relative_to(root)}\t{label}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}"
                     for p, label in pictures)


def load_picture_folder(folder: str | Path) -> dict:
    """The arrays and class names of a class-folder dataset (see the module docstring): a dict with
    train_images, train_labels, test_images, test_labels (uint8, (N, 28, 28) and (N,)) and class_names."""
    folder = Path(folder)
    classes = sorted(p.name for p in (folder / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{folder / 'train'}: a dataset needs at least two class folders, found {classes}")
    splits = {"train": _pictures(folder / "train", classes)}
    if (folder / "test").is_dir():
        extra = sorted({p.name for p in (folder / "test").iterdir() if p.is_dir()} - set(classes))
        if extra:
            raise DataError(f"{folder / 'test'}: class folders {extra} are not in train/; the two must name the same "
                            "classes")
        splits["test"] = _pictures(folder / "test", classes)
    fingerprint = "\n".join(_fingerprint(pictures, folder) for pictures in splits.values())
    cached = _read_cache(folder / CACHE_FILE, fingerprint)
    if cached is not None:
        return cached
    problems: list[str] = []
    arrays = {}
    for split, pictures in splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _read(pictures, problems)
    if problems:
        warnings.warn(f"{len(problems)} picture(s) of {folder} could not be read and are left out: "
                      + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else ""), stacklevel=2)
    if "test" not in splits:  # hold out a seeded tenth of train/ as the test set
        n = len(arrays["train_images"])
        order, held_out = np.random.default_rng(0).permutation(n), max(1, round(n * HELD_OUT))
        test, train = np.sort(order[:held_out]), np.sort(order[held_out:])
        for kind in ("images", "labels"):
            whole = arrays[f"train_{kind}"]
            arrays[f"train_{kind}"], arrays[f"test_{kind}"] = whole[train], whole[test]
    result = {**arrays, "class_names": tuple(classes)}
    _write_cache(folder / CACHE_FILE, fingerprint, result)
    return result


def _read_cache(path: Path, fingerprint: str) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as cache:
            if str(cache["fingerprint"]) != fingerprint:
                return None
            return {**{k: cache[k] for k in ("train_images", "train_labels", "test_images", "test_labels")},
                    "class_names": tuple(str(c) for c in cache["class_names"])}
    except (OSError, KeyError, ValueError):  # none yet, or damaged: read the pictures again
        return None


def _write_cache(path: Path, fingerprint: str, arrays: dict) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, fingerprint=np.array(fingerprint), **{**arrays, "class_names": np.array(arrays["class_names"])})
    try:
        with atomic_write(path) as f:
            f.write(buffer.getvalue())
    except OSError:  # a read-only folder: the pictures are read again next time
        pass
