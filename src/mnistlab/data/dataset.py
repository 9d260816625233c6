"""Loading a whole MNIST-family dataset into uint8 arrays: by name, from a folder of IDX files, from a
folder of one's own pictures sorted into class folders, or from an .npz file of arrays (`data/arrays.py`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mnistlab.data.arrays import check_arrays, read_arrays
from mnistlab.data.folders import is_picture_folder, load_picture_folder
from mnistlab.data.handwriting import UCI_DIGITS, load_uci_digits
from mnistlab.data.idx import load_idx_images, load_idx_labels
from mnistlab.data.registry import DATA_ENV_VAR, DATASETS, STANDARD_FILES, get_dataset_spec, resolve_data_root
from mnistlab.errors import ConfigError, DataError

SPLITS = ("train", "test")


@dataclass
class Dataset:
    """A dataset held in memory.

    Images are uint8 arrays of shape (N, H, W) (28x28 for the standard sets) with values 0-255 (0 is
    background); labels are uint8 (N,) with values below `num_classes`. A dataset made from arrays may have
    its own validation split (`val_*`, Keras's validation_data) and may lack a test split (0 test images).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: Path
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None

    @classmethod
    def from_arrays(cls, train: tuple[Any, Any], validation: tuple[Any, Any] | None = None,
                    test: tuple[Any, Any] | None = None, class_names: Sequence[str] | None = None,
                    name: str = "arrays") -> "Dataset":
        """A dataset of (images, labels) arrays, numpy or torch, checked (see `data/arrays.py`)."""
        return cls(name=name, source=Path(name), **check_arrays(train, validation, test, class_names))

    @property
    def has_test(self) -> bool:
        return len(self.test_images) > 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:])

    def __repr__(self) -> str:  # the arrays' own repr would fill a screen
        h, w = self.image_shape
        val = f", {len(self.val_images):,} validation" if self.val_images is not None else ""
        return (f"Dataset({self.name!r}: {len(self.train_images):,} training{val} and {len(self.test_images):,} "
                f"test images of {h}x{w}, {self.num_classes} classes, from {self.source})")

    def _repr_html_(self) -> str:
        """In a notebook: its splits and classes, and a few of its images."""
        from mnistlab import plots
        from mnistlab._html import png, table

        h, w = self.image_shape
        rows = [("training images", f"{len(self.train_images):,}"),
                *([("validation images", f"{len(self.val_images):,}")] if self.val_images is not None else []),
                ("test images", f"{len(self.test_images):,}"), ("image size", f"{h}x{w}"),
                ("classes", ", ".join(self.class_names)), ("source", self.source)]
        grid = plots.sample_grid(self.train_images[:16], self.train_labels[:16], self.class_names)
        return table(rows, f"dataset {self.name}") + png(grid, "the first training images")

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of "train" or "test"."""
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split == "test" and not self.has_test:
            raise DataError(f"dataset {self.name!r} has no test split; give one (test_data=, or x_test/y_test in "
                            "its .npz), or look at its train split")
        return getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")


def find_idx_file(folder: Path, standard_name: str) -> Path | None:
    """The file for a standard name in `folder`: gzipped or not, with '-' or '.' before 'idx' (LeCun's zip)."""
    dotted = standard_name.replace("-idx", ".idx")
    for candidate in (standard_name + ".gz", standard_name, dotted + ".gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def missing_files(folder: Path) -> list[str]:
    return [name for name in STANDARD_FILES.values() if find_idx_file(folder, name) is None]


def load_dataset(
    name_or_folder: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load a dataset by registered name (downloading it once into the data root) or from a folder.

    A folder holds the four standard IDX files (gzipped or not; an optional `classes.txt` there gives one
    class name per line), or pictures in one sub-folder per class under train/ (and optionally test/), read
    as `data/folders.py` says. A file ending in .npz holds arrays (`data/arrays.py`). `uci-digits` is real
    handwriting from outside MNIST, for evaluation only (`data/handwriting.py`).
    """
    key = str(name_or_folder)
    if key == UCI_DIGITS:
        return Dataset(name=key, **load_uci_digits())
    if key.endswith(".npz"):
        path = Path(key).expanduser()
        return Dataset(source=path, **read_arrays(path))
    if key in DATASETS:
        spec = get_dataset_spec(key)
        folder = resolve_data_root(data_dir) / spec.name
        missing = missing_files(folder)
        if missing and download:
            _download_missing(spec, folder, missing)
        elif missing:
            raise DataError(_missing_message(spec.name, folder, missing, "downloading is turned off"))
        return _load_folder(folder, spec.name, spec.class_names)
    folder = Path(name_or_folder).expanduser()
    if folder.is_dir() and is_picture_folder(folder):
        arrays = load_picture_folder(folder)
        for split in SPLITS:
            if len(arrays[f"{split}_images"]) == 0:
                raise DataError(f"{folder}: no picture of its {split} split could be read")
        return Dataset(name=folder.name, source=folder, **arrays)
    if folder.is_dir():
        missing = missing_files(folder)
        if missing:
            raise DataError(
                f"{folder} is not a dataset folder: it lacks {', '.join(missing)} (gzipped or not); "
                f"put the four standard IDX files there"
            )
        return _load_folder(folder, folder.name, _custom_class_names(folder))
    get_dataset_spec(key)  # raises the unknown-name error listing the known names
    raise AssertionError("unreachable")


def _download_missing(spec, folder: Path, missing: list[str]) -> None:
    """Download what is missing; files without a published checksum must at least be whole IDX files."""
    from mnistlab.data.download import download_files
    from mnistlab.data.idx import read_idx

    try:
        download_files([m + ".gz" for m in missing], spec.mirrors, folder, spec.sha256, check=read_idx)
    except DataError as e:  # what arrived stays; the message names only what is still missing
        raise DataError(_missing_message(spec.name, folder, missing_files(folder), f"download failed ({e})")) from None


def _missing_message(name: str, folder: Path, missing: list[str], why: str) -> str:
    return (
        f"dataset {name!r} is missing {', '.join(missing)} in {folder} and {why}; copy the four files "
        f"(gzipped or not) there, or point --data-dir or ${DATA_ENV_VAR} at a folder holding {name}/"
    )


def _custom_class_names(folder: Path) -> tuple[str, ...] | None:
    names_file = folder / "classes.txt"
    if not names_file.is_file():
        return None
    try:
        text = names_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{names_file}: not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8, one class "
                        "name a line") from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise DataError(f"{names_file} names no classes; write one class name a line, or delete it")
    return names


def _load_folder(folder: Path, name: str, class_names: tuple[str, ...] | None) -> Dataset:
    arrays = {}
    for (split, kind), standard in STANDARD_FILES.items():
        path = find_idx_file(folder, standard)
        arrays[split, kind] = load_idx_images(path) if kind == "images" else load_idx_labels(
            path, len(class_names) if class_names else None
        )
    for split in SPLITS:
        images, labels = arrays[split, "images"], arrays[split, "labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{folder}: the {split} split has {len(images)} images but {len(labels)} labels; "
                f"the image and label files do not belong together"
            )
        if len(images) == 0 or 0 in images.shape[1:]:
            raise DataError(f"{folder}: the {split} split holds no images (its files declare shape {images.shape}); "
                            "replace them with files that hold the dataset")
    if arrays["train", "images"].shape[1:] != arrays["test", "images"].shape[1:]:
        raise DataError(f"{folder}: train and test images differ in size")
    if class_names is None:
        top = max(int(arrays["train", "labels"].max(initial=0)), int(arrays["test", "labels"].max(initial=0)))
        class_names = tuple(str(c) for c in range(top + 1))
    return Dataset(
        name=name,
        train_images=arrays["train", "images"],
        train_labels=arrays["train", "labels"],
        test_images=arrays["test", "images"],
        test_labels=arrays["test", "labels"],
        class_names=class_names,
        source=folder,
    )


def describe_dataset(dataset: Dataset) -> dict:
    """What the tutorials print by hand: counts, shape, pixel range, label values and per-class counts."""
    info = {"name": dataset.name, "source": str(dataset.source), "classes": list(dataset.class_names), "splits": {}}
    parts = {"train": (dataset.train_images, dataset.train_labels), "val": (dataset.val_images, dataset.val_labels),
             "test": (dataset.test_images, dataset.test_labels)}
    for split, (images, labels) in parts.items():
        if images is None or len(images) == 0:  # no validation split of its own; no test split
            continue
        counts = np.bincount(labels, minlength=dataset.num_classes)
        info["splits"][split] = {
            "count": int(len(images)),
            "image_shape": list(images.shape[1:]),
            "dtype": str(images.dtype),
            "pixel_min": int(images.min()),
            "pixel_max": int(images.max()),
            "pixel_mean": round(float(images.mean()), 3),
            "pixel_std": round(float(images.std()), 3),
            "labels": sorted(int(v) for v in np.unique(labels)),
            "class_counts": [int(c) for c in counts],
        }
    return info


def parse_index_ranges(text: str) -> list[int]:
    """"0,5,10-14" -> [0, 5, 10, 11, 12, 13, 14]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"indices {text!r} is not a list like 0,5,10-14") from None
    return out


def select_samples(total: int, indices: str | Sequence[int] | None = None, count: int = 25, random: bool = False,
                   seed: int = 0) -> list[int]:
    """Which of `total` samples to look at: the given `indices` ("0,5,10-14" or a list), else `count`
    samples, the first ones or (`random`) drawn without replacement with `seed`."""
    if indices is not None:
        chosen = parse_index_ranges(indices) if isinstance(indices, str) else [int(i) for i in indices]
        if not chosen:
            raise ConfigError(f"indices {indices!r} names no sample; give e.g. 0,5,10-14")
        bad = [i for i in chosen if not 0 <= i < total]
        if bad:
            raise ConfigError(f"index {bad[0]} is out of range: there are {total:,} samples (0 to {total - 1:,})")
        return chosen
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    count = min(count, total)
    if random:
        return np.random.default_rng(seed).choice(total, count, replace=False).tolist()
    return list(range(count))
