"""Running a model over many images at once: large batches, no autograd, optional autocast."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from mnistlab.models.base import as_image_batch


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """bf16 autocast on `device` when `dtype` is given, else nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def batched_logits(model: torch.nn.Module, images, batch_size: int = 2048,
                   autocast_dtype: torch.dtype | None = None, channels_last: bool = False) -> torch.Tensor:
    """Logits (N, classes) float32, on the model's device, for raw images of any accepted shape and dtype.

    Images stay uint8 until each batch is on the device, so a whole test set costs one small copy.
    """
    device = next(model.parameters()).device
    # a read-only array (an IDX file's, read with frombuffer) is copied: torch warns about sharing it
    x_all = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.require(images, None, ["C", "W"]))
    x_all = x_all.to(device)
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast_context(device, autocast_dtype):
            for start in range(0, len(x_all), batch_size):
                x = as_image_batch(x_all[start:start + batch_size], model.image_shape)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(model(x).float())
    finally:
        model.train(was_training)
    if not out:
        return torch.empty(0, model.num_classes, device=device)
    return torch.cat(out)
