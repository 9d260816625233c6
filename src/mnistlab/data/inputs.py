"""Reading the user's own files: pictures, .npy arrays and IDX files, from disk or from uploaded bytes.

Pictures are photos or drawings; `preprocess_digit` does what made MNIST: greyscale, dark background
(inverting dark-on-light images), crop to the ink, scale into a 20x20 box keeping the aspect ratio, then
centre by centre of mass in 28x28. Arrays (.npy, IDX) are taken as they are, already in dataset form.
`predict`, the server and (for a folder of one's own pictures) datasets all read through here.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mnistlab.data.idx import declared_span, max_idx_bytes, read_idx
from mnistlab.errors import DataError

MAX_SIDE = 2048  # pixels: larger pictures are reduced to this as they are read (see _shrink)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INPUT_KINDS = "PNG, JPEG, BMP, .npy or IDX files"


def is_input_file(name: str | os.PathLike) -> bool:
    """Whether `read_input` reads this kind of file (by its name)."""
    path = Path(name)
    return path.suffix.lower() in IMAGE_SUFFIXES | {".npy"} or "idx" in path.name or path.suffix.lower() == ".gz"


@dataclass(frozen=True)
class InputLimits:
    """What one file may cost, checked before anything large is allocated: a picture's pixels (before it is
    decoded), an array's declared bytes (.npy header, IDX header; gzip is inflated only that far) and the
    images in it. The server answers with its own, stricter limits."""

    max_pixels: int = 25_000_000  # width * height of a picture (a 24-megapixel photo; Pillow's own limit is 179 MP)
    # the values an .npy or IDX file declares; None: what $MNISTLAB_MAX_IDX_MB allows (1 GiB unless set), read
    # when a file is read
    max_array_bytes: int | None = None
    max_images: int = 1_000_000  # images in one .npy or IDX file

    @property
    def array_bytes(self) -> int:
        return max_idx_bytes() if self.max_array_bytes is None else self.max_array_bytes


def is_small_picture(data: bytes, name: str, max_pixels: int = 1_000_000) -> bool:
    """Whether `data` is a picture (by its name) whose header declares at most `max_pixels`, read without
    decoding it: such a picture costs well under a millisecond to read and preprocess. A damaged one counts as
    small too, since reading it fails as fast."""
    from PIL import Image

    if Path(name).suffix.lower() not in IMAGE_SUFFIXES or len(data) > 4 * max_pixels:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                return width * height <= max_pixels and getattr(image, "n_frames", 1) == 1
    except Image.DecompressionBombError:  # Pillow's own refusal of a header declaring too much
        return False
    except Exception:  # not a picture after all: read_image refuses it at once
        return True


def read_image(data: bytes, name: str, limits: InputLimits = InputLimits()) -> np.ndarray:
    """A picture's bytes as greyscale uint8 (H, W); transparent parts count as white paper. A picture larger
    than `limits.max_pixels`, or an animation, is refused before it is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns of bombs as it opens; the size check below refuses them
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        with image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise DataError(f"{name}: the picture is {width}x{height} pixels, more than the "
                                f"{limits.max_pixels:,} allowed; scale it down first")
            if getattr(image, "n_frames", 1) > 1:
                raise DataError(f"{name}: an animation of {image.n_frames} frames; save the frame you mean as "
                                "a picture of its own (PNG)")
            image.draft("L", (MAX_SIDE, MAX_SIDE))  # a JPEG decodes at a fraction of its size where that is enough
            image.load()
            image = _shrink(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(paper, rgba)
            return np.asarray(image.convert("L"), dtype=np.uint8)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(f"{name}: not a readable image (no picture format that Pillow knows, or damaged)") from None
    except Exception as e:  # Pillow's parsers raise many kinds on a damaged file (OSError, SyntaxError, TypeError...)
        raise DataError(f"{name}: not a readable image ({e.__class__.__name__}: {e})") from None


def _shrink(image):
    """A picture larger than MAX_SIDE on its long side, reduced by a whole factor (box averages): MNIST-style
    preprocessing ends in a 20x20 box, and the copies that converting a large picture makes are what costs
    memory (a 16-megapixel RGBA photo: 64 MB each)."""
    factor = math.ceil(max(image.size) / MAX_SIDE)
    if factor <= 1:
        return image
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGBA" if alpha else "L")
    return image.reduce(factor)


def read_npy(data: bytes, name: str, limits: InputLimits = InputLimits()) -> np.ndarray:
    """An .npy file's array of numbers. Its header is read first: pickled objects, non-numbers (complex,
    strings) and more values than `limits.array_bytes` are refused before the values are read."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise DataError(f"{name}: not a readable .npy array ({e})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{name}: the array holds {dtype} values; give pixel values as integers or floats")
    size = math.prod(shape) * dtype.itemsize
    if declared_span(shape, dtype.itemsize) > limits.array_bytes:
        raise DataError(f"{name}: the array's header declares shape {shape}, more than the "
                        f"{limits.array_bytes:,} bytes allowed")
    if len(data) - stream.tell() < size:
        raise DataError(f"{name}: truncated .npy array: its header declares shape {shape} ({size:,} bytes) but "
                        f"{len(data) - stream.tell():,} bytes follow")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{name}: not a readable .npy array ({e})") from None


def read_input(data: bytes, name: str, limits: InputLimits = InputLimits()) -> tuple[np.ndarray, bool]:
    """(images (N, H, W) or (H, W) uint8/float, is_picture) from the bytes of a file called `name`, whose
    suffix says what it is: a picture (PNG/JPEG/BMP/...), or an array already in dataset form (.npy, IDX).
    Each is read within `limits`."""
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return read_image(data, name, limits), True
    if suffix == ".npy":
        return read_npy(data, name, limits), False
    if is_input_file(name):
        return read_idx(data, name, limits.array_bytes), False
    raise DataError(f"{name}: unknown file type; give {INPUT_KINDS}")


def read_input_file(path: str | os.PathLike, limits: InputLimits = InputLimits()) -> tuple[np.ndarray, bool]:
    """`read_input` of a file on disk."""
    path = Path(path)
    if not is_input_file(path):
        raise DataError(f"{path}: unknown file type; give {INPUT_KINDS}")
    try:
        return read_input(path.read_bytes(), str(path), limits)
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


def images_from_file(path: str | os.PathLike, image_shape: tuple[int, int], preprocess: bool = True,
                     limits: InputLimits = InputLimits()) -> np.ndarray:
    """The batch (N, H, W) that a file holds, ready for a Predictor (see `model_input`)."""
    return model_input(*read_input_file(path, limits), str(path), image_shape, preprocess, limits)


def model_input(data: np.ndarray, is_picture: bool, name: str, image_shape: tuple[int, int],
                preprocess: bool = True, limits: InputLimits = InputLimits()) -> np.ndarray:
    """What `read_input` gave, as a batch (N, H, W) for a Predictor. Pictures are preprocessed (unless
    `preprocess` is False, when they must already have the model's size); arrays are used as they are, and
    must hold 1 to `limits.max_images` images of finite values."""
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
    if len(data) == 0:
        raise DataError(f"{name}: the array holds no images")
    if len(data) > limits.max_images:
        raise DataError(f"{name}: the array holds {len(data):,} images, more than the {limits.max_images:,} "
                        "allowed in one file; split it")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise DataError(f"{name}: the array holds NaN or infinite values; give pixel values 0-255")
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
