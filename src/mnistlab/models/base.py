"""What every zoo model shares: normalization inside the model and one forgiving input entry point.

A `Classifier` takes raw pixels (values 0-255, as in the IDX files; uint8 or float) of shape (N, H, W),
(N, 1, H, W) or (N, H*W), normalizes them with buffers saved alongside the weights, and returns logits
(N, num_classes). A saved model therefore needs no preprocessing from whoever loads it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mnistlab.errors import ConfigError

NORMALIZATIONS = ("scale", "global", "standardize")


class Normalize(nn.Module):
    """Pixels 0-255 -> (x / 255 - mean) / std, with mean and std buffers of shape (1, 1, H, W).

    mode "scale": only divide by 255; "global": one mean and std over all pixels; "standardize": a mean and
    std per pixel (scikit-learn's StandardScaler on the flattened images, as the tutorials do; pixels that
    never vary keep std 1). `fixed` means mean/std were given and `fit` leaves them alone.
    """

    def __init__(self, mode: str, image_shape: tuple[int, int], mean: float | None = None,
                 std: float | None = None):
        super().__init__()
        if mode not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalization {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if (mean is None) != (std is None) or (mean is not None and mode != "global"):
            raise ConfigError("normalization mean and std go together, and only with normalize='global'")
        if std is not None and std <= 0:
            raise ConfigError(f"normalization std must be positive, got {std}")
        self.mode, self.fixed = mode, mean is not None
        self.register_buffer("mean", torch.full((1, 1, *image_shape), float(mean or 0.0)))
        self.register_buffer("std", torch.full((1, 1, *image_shape), float(std or 1.0)))
        # forward is one fused multiply-add, x * scale + shift; these follow mean and std and are not saved
        self.register_buffer("scale", torch.empty_like(self.mean), persistent=False)
        self.register_buffer("shift", torch.empty_like(self.mean), persistent=False)
        self._refresh()
        self.register_load_state_dict_post_hook(lambda module, _keys: module._refresh())

    @torch.no_grad()
    def _refresh(self) -> None:
        self.scale.copy_(1.0 / (255.0 * self.std.double()))
        self.shift.copy_(-self.mean.double() / self.std.double())

    @torch.no_grad()
    def fit(self, images: np.ndarray | torch.Tensor) -> None:
        """Set mean and std from training images (N, H, W) uint8, unless they are fixed or mode is 'scale'."""
        if self.mode == "scale" or self.fixed:
            return
        flat = torch.as_tensor(images).reshape(len(images), -1)
        if self.mode == "global" and flat.dtype == torch.uint8:
            # from how many pixels hold each of the 256 values: exact, and a tenth of the time of the sums
            counts = torch.bincount(flat.reshape(-1), minlength=256).to(torch.float64)
            values = torch.arange(256, dtype=torch.float64, device=flat.device) / 255.0
            total, squares, count = counts @ values, counts @ values.square(), float(flat.numel())
        else:
            # per-pixel sums in float64, a chunk at a time: a float64 copy of the whole set would be 8x its size
            total = torch.zeros(flat.shape[1], dtype=torch.float64, device=flat.device)
            squares = torch.zeros_like(total)
            for chunk in flat.split(4096):
                chunk = chunk.to(torch.float64).div_(255.0)
                total += chunk.sum(0)
                squares += chunk.square().sum(0)
            count = float(len(flat))
            if self.mode == "global":
                total, squares, count = total.sum(), squares.sum(), count * flat.shape[1]
        mean = total / count
        std = (squares / count - mean.square()).clamp_(min=0).sqrt_()
        std = torch.where(std > 1e-6, std, torch.ones_like(std))  # pixels that never vary keep std 1
        self.mean.copy_(mean.to(self.mean.dtype).expand(self.mean.numel()).view_as(self.mean))
        self.std.copy_(std.to(self.std.dtype).expand(self.std.numel()).view_as(self.std))
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class Classifier(nn.Module):
    """A zoo network behind its normalization. forward: raw pixels (see module docstring) -> logits, divided
    by `temperature`."""

    def __init__(self, net: nn.Module, normalize: Normalize, image_shape: tuple[int, int], num_classes: int):
        super().__init__()
        self.normalize = normalize
        self.net = net
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        # the logits are divided by it: 1 while training, then fitted on held-out images and saved in the
        # checkpoint's description (`models.calibration`); it changes confidences, never answers
        self.temperature = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # uint8 stays uint8: normalization's multiply-add converts it in the same op
        x = as_image_batch(x, self.image_shape, keep_uint8=True)
        logits = self.net(self.normalize(x))
        return logits if self.temperature == 1.0 else logits / self.temperature


def as_image_batch(images, image_shape: tuple[int, int] = (28, 28), keep_uint8: bool = False) -> torch.Tensor:
    """Any accepted batch -> float tensor (N, 1, H, W) of pixel values 0-255 (a tensor's device is kept),
    or uint8 if it was uint8 and `keep_uint8`.

    Accepts numpy arrays or tensors of shape (N, H, W), (N, 1, H, W) or (N, H*W), uint8 or float.
    """
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    h, w = image_shape
    shape = tuple(x.shape)
    if x.dim() == 4 and shape[1:] == (1, h, w):
        pass
    elif x.dim() == 3 and shape[1:] == (h, w):
        x = x.unsqueeze(1)
    elif x.dim() == 2 and shape[1] == h * w:
        x = x.reshape(shape[0], 1, h, w)
    else:
        raise ConfigError(
            f"images of shape {shape} are not accepted; give a batch of shape (N, {h}, {w}), "
            f"(N, 1, {h}, {w}) or (N, {h * w})"
        )
    return x if x.dtype == torch.float32 or (keep_uint8 and x.dtype == torch.uint8) else x.float()
