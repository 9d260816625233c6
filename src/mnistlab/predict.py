"""Prediction: a `Predictor` over one model or an ensemble, and reading the user's own files.

`mnistlab.load(path)` takes a run folder, an ensemble folder or a checkpoint (.safetensors) and returns a
Predictor whose `predict`/`predict_proba` take raw images of shape (N, H, W), (N, 1, H, W) or (N, H*W),
uint8 or float, pixel values 0-255 with a dark background (as in MNIST).

For photos and drawings, `preprocess_digit` does what made MNIST: greyscale, dark background (inverting
dark-on-light images), crop to the ink, scale into a 20x20 box keeping the aspect ratio, then centre by
centre of mass in 28x28.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mnistlab.errors import ConfigError, DataError, MnistlabError
from mnistlab.evaluation import tta_logits
from mnistlab.models.base import Classifier
from mnistlab.models.inference import batched_logits
from mnistlab.models.io import load_exported_models, load_model
from mnistlab.runs import ENSEMBLE_FILE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INPUT_KINDS = "PNG, JPEG, BMP, .npy or IDX files"


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")


@dataclass
class Predictor:
    """One model, or several whose class probabilities are averaged (an ensemble)."""

    models: list[Classifier]
    class_names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    tta_mirror: Sequence[bool] = ()  # per member: trained with mirroring, so TTA adds mirrored views

    def __post_init__(self):
        self.tta_mirror = tuple(self.tta_mirror) or (False,) * len(self.models)

    def __repr__(self) -> str:  # the modules' own repr would fill a screen
        names = ", ".join(sorted({m.spec["name"] for m in self.models}))
        what = f"an ensemble of {len(self.models)} ({names})" if self.is_ensemble else names
        return f"Predictor({what}, {len(self.class_names)} classes, from {self.source})"

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.models[0].image_shape

    @property
    def is_ensemble(self) -> bool:
        return len(self.models) > 1

    def member_proba(self, images, batch_size: int = 2000, tta: bool = False) -> list[np.ndarray]:
        """Each member's probabilities (N, classes); with `tta`, from logits averaged over the image and its
        1-pixel shifts (and their mirrors, for models trained with them), as training's TTA does."""
        probabilities = []
        for model, mirror in zip(self.models, self.tta_mirror):
            if tta:
                logits = tta_logits(model, images, batch_size, mirror=mirror)
            else:
                logits = batched_logits(model, images, batch_size)
            probabilities.append(torch.softmax(logits, dim=1).cpu().numpy())
        return probabilities

    def predict_proba(self, images, batch_size: int = 2000, tta: bool = False) -> np.ndarray:
        """Class probabilities (N, classes) float32: the members' average for an ensemble."""
        return np.mean(self.member_proba(images, batch_size, tta), axis=0).astype(np.float32)

    def predict(self, images, batch_size: int = 2000, tta: bool = False) -> np.ndarray:
        """Predicted class indices (N,) int64."""
        return self.predict_proba(images, batch_size, tta).argmax(axis=1)

    def describe(self, images, top_k: int = 3, tta: bool = False) -> list[dict[str, Any]]:
        """Per image: the predicted class, its name and probability, and the `top_k` most probable classes
        (what `mnistlab predict --json` and the server answer)."""
        check_top_k(top_k)
        out = []
        for row in self.predict_proba(images, tta=tta):
            order = np.argsort(-row)[:top_k]
            out.append({"class": int(order[0]), "name": self.class_names[order[0]], "probability": float(row[order[0]]),
                        "top": [{"class": int(c), "name": self.class_names[c], "probability": float(row[c])}
                                for c in order]})
        return out


def load(path: str | os.PathLike, device: str = "cpu") -> Predictor:
    """A Predictor from a run folder (its best checkpoint), an ensemble folder, a checkpoint's .safetensors
    file, or a safetensors file that `export` wrote."""
    path = Path(path)
    if (path / ENSEMBLE_FILE).is_file():
        spec = json.loads((path / ENSEMBLE_FILE).read_text())
        loaded = [load_model(path / member, device) for member in spec["members"]]
        return Predictor([m for m, _ in loaded], tuple(spec["class_names"]), spec, path,
                         [meta.get("tta_mirror", False) for _, meta in loaded])
    if path.is_dir():
        path = path / "checkpoints" / "best.safetensors"
        if not path.is_file():
            raise MnistlabError(f"{path.parent.parent} is neither a finished run nor an ensemble "
                                f"(no checkpoints/best.safetensors, no {ENSEMBLE_FILE})")
    elif not path.exists():
        raise MnistlabError(f"{path}: no such run, ensemble or checkpoint")
    elif path.suffix == ".safetensors" and not path.with_suffix(".json").exists():
        models, meta = load_exported_models(path, device)
        return Predictor(models, tuple(meta["class_names"]), meta, path, meta.get("tta_mirror", ()))
    model, meta = load_model(path, device)
    names = meta.get("class_names") or [str(i) for i in range(model.num_classes)]
    return Predictor([model], tuple(names), meta, path, [meta.get("tta_mirror", False)])


# ---------------------------------------------------------------- reading files
def is_input_file(name: str | os.PathLike) -> bool:
    """Whether `read_input` reads this kind of file (by its name)."""
    path = Path(name)
    return path.suffix.lower() in IMAGE_SUFFIXES | {".npy"} or "idx" in path.name or path.suffix.lower() == ".gz"


def read_image(data: bytes, name: str) -> np.ndarray:
    """A picture's bytes as greyscale uint8 (H, W); transparent parts count as white paper."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(paper, rgba)
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (no picture format that Pillow knows, or damaged)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{name}: not a readable image ({e.__class__.__name__}: {e})") from None


def read_input(data: bytes, name: str) -> tuple[np.ndarray, bool]:
    """(images (N, H, W) or (H, W) uint8/float, is_picture) from the bytes of a file called `name`, whose
    suffix says what it is: a picture (PNG/JPEG/BMP/...), or an array already in dataset form (.npy, IDX)."""
    from mnistlab.data.idx import gunzip_if_gzipped, parse_idx

    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return read_image(data, name), True
    if suffix == ".npy":
        try:
            return np.load(io.BytesIO(data), allow_pickle=False), False
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{name}: not a readable .npy array ({e})") from None
    if is_input_file(name):
        return parse_idx(gunzip_if_gzipped(data, name), name), False
    raise DataError(f"{name}: unknown file type; give {INPUT_KINDS}")


def read_input_file(path: str | os.PathLike) -> tuple[np.ndarray, bool]:
    """`read_input` of a file on disk."""
    path = Path(path)
    if not is_input_file(path):
        raise DataError(f"{path}: unknown file type; give {INPUT_KINDS}")
    try:
        return read_input(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def preprocess_digit(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """A photo or drawing (H, W) uint8 -> an MNIST-style image (size, size) uint8 (see module docstring)."""
    from PIL import Image

    img = gray.astype(np.float32)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper: MNIST has light ink on black
        img = 255.0 - img
    img -= np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]))  # paper to 0
    img = np.clip(img, 0, None)
    if img.max() < 1:
        raise DataError("the image is blank: no ink found")
    img *= 255.0 / img.max()
    ys, xs = np.nonzero(img > 0.2 * 255)
    img = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = img.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(Image.fromarray(img.astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS), np.float32)
    canvas = np.zeros((size, size), np.float32)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = small
    total = canvas.sum()
    cy = (canvas.sum(axis=1) * np.arange(size)).sum() / total
    cx = (canvas.sum(axis=0) * np.arange(size)).sum() / total
    dy, dx = round((size - 1) / 2 - cy), round((size - 1) / 2 - cx)
    canvas = np.roll(np.roll(canvas, dy, axis=0), dx, axis=1)
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def images_from_file(path: str | os.PathLike, image_shape: tuple[int, int], preprocess: bool = True
                     ) -> np.ndarray:
    """The batch (N, H, W) that a file holds, ready for a Predictor (see `model_input`)."""
    return model_input(*read_input_file(path), str(path), image_shape, preprocess)


def model_input(data: np.ndarray, is_picture: bool, name: str, image_shape: tuple[int, int],
                preprocess: bool = True) -> np.ndarray:
    """What `read_input` gave, as a batch (N, H, W) for a Predictor. Pictures are preprocessed (unless
    `preprocess` is False, when they must already have the model's size); arrays are used as they are."""
    if is_picture:
        if preprocess:
            try:
                return preprocess_digit(data, image_shape[0], round(image_shape[0] * 20 / 28))[None]
            except DataError as e:
                raise DataError(f"{name}: {e}") from None
        if data.shape != tuple(image_shape):
            raise DataError(f"{name}: image is {data.shape[1]}x{data.shape[0]} pixels, the model takes "
                            f"{image_shape[1]}x{image_shape[0]}; drop --no-preprocess to resize it")
        return data[None]
    if data.ndim == 2 and data.shape == tuple(image_shape):
        data = data[None]
    if data.ndim == 4 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim == 2 and data.shape[1] == image_shape[0] * image_shape[1]:
        data = data.reshape(-1, *image_shape)
    if data.ndim != 3 or data.shape[1:] != tuple(image_shape):
        raise DataError(f"{name}: array of shape {data.shape} is not a batch of {image_shape[0]}x{image_shape[1]} "
                        f"images; give (N, H, W), (N, 1, H, W), (N, H*W) or one (H, W) image")
    return data


def expand_folders(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; a folder becomes the readable files directly inside it, sorted by name (an empty
    folder stays, so that it is reported)."""
    out = []
    for path in map(Path, paths):
        inside = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                        and is_input_file(p)) if path.is_dir() else []
        out += inside or [path]
    return out


def predict_files(predictor: Predictor, paths: Sequence[str | os.PathLike], top_k: int = 3,
                  preprocess: bool = True, tta: bool = False) -> list[dict[str, Any]]:
    """One result per file (a folder stands for the files in it): its predictions (one per image in the
    file) or its error; a bad file does not stop the others."""
    check_top_k(top_k)  # before any file is read: one error, not one per file
    results = []
    for path in expand_folders(paths):
        if path.is_dir():
            results.append({"file": str(path), "error": f"{path}: the folder holds no {INPUT_KINDS}"})
            continue
        try:
            images = images_from_file(path, predictor.image_shape, preprocess)
        except MnistlabError as e:
            results.append({"file": str(path), "error": str(e)})
            continue
        results.append({"file": str(path), "predictions": predictor.describe(images, top_k, tta)})
    return results
