"""Running a model over many images at once: large batches, no autograd, optional autocast, test-time
augmentation (logits averaged over shifted views), and occlusion maps (which pixels drove an answer)."""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.models.base import as_image_batch


def autocast_context(device: torch.device, dtype: torch.dtype | None, cache: bool = True):
    """bf16 autocast on `device` when `dtype` is given, else nothing. `cache=False` for CUDA graph capture."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


@contextlib.contextmanager
def exact_float32():
    """Float32 convolutions in float32: cuDNN runs them in TF32 (10-bit mantissas) by default on recent GPUs,
    so without this a model would answer differently on a GPU than on a CPU."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9; mixing it with allow_tf32 fails
        saved, conv.fp32_precision = conv.fp32_precision, "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = saved
    else:
        saved, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = saved


# Test-time augmentation: the image itself and its 1-pixel shifts; their left-right mirrors only for models
# trained with mirroring (clothes: `augment.flip`), never by default, since digits are not symmetric.
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
PLAIN_VIEW = ((0, 0, False),)  # (dy, dx, mirrored): the image as it is


def tta_views(mirror: bool = False) -> tuple[tuple[int, int, bool], ...]:
    """The (dy, dx, mirrored) views test-time augmentation averages over; the first is the image itself."""
    return tuple((dy, dx, mirrored) for mirrored in ((False, True) if mirror else (False,)) for dy, dx in TTA_SHIFTS)


def views_for(tta: bool, mirror: bool = False) -> tuple[tuple[int, int, bool], ...]:
    """The views a test or a prediction looks at: with `tta` those of `tta_views(mirror)`, else the image."""
    return tta_views(mirror) if tta else PLAIN_VIEW


def shift_images(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift (N, 1, H, W) by whole pixels, filling with background 0."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def view_logits(model: torch.nn.Module, images, batch_size: int = 2048,
                autocast_dtype: torch.dtype | None = None, channels_last: bool = False,
                views: tuple[tuple[int, int, bool], ...] = PLAIN_VIEW) -> torch.Tensor:
    """Logits (V, N, classes) float32, on the model's device, of each of `views` (see `tta_views`) of raw
    images of any accepted shape and dtype: one pass gives a test's plain answer (the first view of
    `tta_views` is the image itself) and its test-time augmented one.

    Images stay as they are (uint8 for datasets) until each batch is on the device, and each batch makes its
    views itself: a whole split costs one small copy, not one float copy per view (TTA of the test set
    took 100 MB more that way).
    """
    device = next(model.parameters()).device
    # a read-only array (an IDX file's, read with frombuffer) is copied: torch warns about sharing it
    x_all = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.require(images, None, ["C", "W"]))
    x_all = x_all.to(device)
    # made before the first batch: each batch's logits kept as small tensors of their own until the end would lie
    # scattered in the memory its activations free, and keep the allocator from reusing it for the next batch's
    # (a float32 test of `fashion-best` with its 10 views grew by 270 MB that way)
    out = torch.empty(len(views), len(x_all), model.num_classes, device=device)
    was_training = model.training
    model.eval()
    try:
        exact = exact_float32() if autocast_dtype is None and device.type == "cuda" else contextlib.nullcontext()
        with torch.inference_mode(), autocast_context(device, autocast_dtype), exact:
            for start in range(0, len(x_all), batch_size):
                x = as_image_batch(x_all[start:start + batch_size], model.image_shape, keep_uint8=True)
                for v, (dy, dx, mirrored) in enumerate(views):
                    view = shift_images(x, dy, dx) if dy or dx else x
                    view = view.flip(-1) if mirrored else view
                    if channels_last:
                        view = view.contiguous(memory_format=torch.channels_last)
                    out[v, start:start + len(x)] = model(view)
    finally:
        model.train(was_training)
    return out


def batched_logits(model: torch.nn.Module, images, batch_size: int = 2048,
                   autocast_dtype: torch.dtype | None = None, channels_last: bool = False,
                   views: tuple[tuple[int, int, bool], ...] = PLAIN_VIEW) -> torch.Tensor:
    """Logits (N, classes) float32 of `view_logits`, averaged over `views`."""
    return view_logits(model, images, batch_size, autocast_dtype, channels_last, views).mean(0)


def tta_logits(model, images, batch_size: int = 2000, autocast_dtype=None, channels_last: bool = False,
               mirror: bool = False):
    """Logits averaged over the image and its 1-pixel shifts, and with `mirror` over their mirrors too."""
    return batched_logits(model, images, batch_size, autocast_dtype, channels_last, tta_views(mirror))


def occlusion_map(probabilities: Callable[[np.ndarray], np.ndarray], image: np.ndarray, target: int,
                  patch: int = 6, stride: int = 2) -> np.ndarray:
    """Which pixels of `image` (H, W) uint8 drove the probability of class `target`: each `patch` x `patch`
    square (every `stride` pixels) is blanked to background, all in one batch, and every pixel gets the mean
    drop in the probability over the squares that covered it. Returns (H, W) float32 in [-1, 1], scaled by
    the largest magnitude: positive where the ink supports the answer, negative where it argues against.
    Works for any model, an ensemble or test-time augmentation alike, since it only asks for probabilities."""
    h, w = image.shape
    starts = [(y, x) for y in range(0, max(h - patch, 0) + 1, stride) for x in range(0, max(w - patch, 0) + 1, stride)]
    occluded = np.repeat(image[None], len(starts), axis=0)
    for i, (y, x) in enumerate(starts):
        occluded[i, y:y + patch, x:x + patch] = 0
    base = probabilities(image[None])[0, target]
    drops = base - probabilities(occluded)[:, target]
    total, cover = np.zeros((h, w), np.float64), np.zeros((h, w), np.float64)
    for drop, (y, x) in zip(drops, starts):
        total[y:y + patch, x:x + patch] += drop
        cover[y:y + patch, x:x + patch] += 1
    saliency = total / np.maximum(cover, 1)
    largest = np.abs(saliency).max()
    return (saliency / largest if largest > 0 else saliency).astype(np.float32)
