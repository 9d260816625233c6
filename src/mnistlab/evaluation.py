"""Looking inside a trained model: loss, accuracy, per-class precision/recall/F1, confusion matrix, mistakes,
and test-time augmentation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mnistlab.models.base import as_image_batch
from mnistlab.models.inference import batched_logits

# Test-time augmentation: the image itself and its 1-pixel shifts (no flips: digits are not symmetric).
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shift_images(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift (N, 1, H, W) by whole pixels, filling with background 0."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def tta_logits(model, images, batch_size: int = 2000, autocast_dtype=None, channels_last: bool = False):
    """Logits averaged over the image and its 1-pixel shifts."""
    x = as_image_batch(images if isinstance(images, torch.Tensor) else torch.as_tensor(images), model.image_shape)
    total = None
    for dy, dx in TTA_SHIFTS:
        logits = batched_logits(model, shift_images(x, dy, dx), batch_size, autocast_dtype, channels_last)
        total = logits if total is None else total + logits
    return total / len(TTA_SHIFTS)
