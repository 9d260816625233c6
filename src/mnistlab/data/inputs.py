"""Reading the user's own files: pictures, .npy arrays and IDX files, from disk or from uploaded bytes.

Pictures are photos or drawings; `preprocess_digit` does what made MNIST: greyscale, dark background
(inverting dark-on-light images), crop to the ink, scale into a 20x20 box keeping the aspect ratio, then
centre by centre of mass in 28x28. Arrays (.npy, IDX) are taken as they are, already in dataset form.
`predict`, the server and (for a folder of one's own pictures) datasets all read through here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mnistlab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INPUT_KINDS = "PNG, JPEG, BMP, .npy or IDX files"


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
