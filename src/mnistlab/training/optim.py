"""Optimizers by name and learning-rate schedules as pure functions of the step."""

from __future__ import annotations

import math

import torch
from torch import nn

from mnistlab.settings import TrainConfig


def kernel_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Weights of convolutions and dense layers: what weight decay and L2 act on (not biases, not BN)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad]


def build_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    kernels = kernel_parameters(model)
    kernel_ids = {id(p) for p in kernels}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in kernel_ids]
    groups = [{"params": kernels, "weight_decay": config.weight_decay},
              {"params": others, "weight_decay": 0.0}]
    if not config.weight_decay:  # one group: half the per-step optimizer overhead that bounds tiny models
        groups = [{"params": kernels + others, "weight_decay": 0.0}]
    name, lr = config.optimizer, config.lr
    kwargs: dict = {}
    if name == "sgd":
        cls = torch.optim.SGD
        kwargs = {"momentum": config.momentum, "nesterov": config.nesterov and config.momentum > 0}
    elif name == "adam":
        cls = torch.optim.Adam
    elif name == "adamw":
        cls = torch.optim.AdamW
    else:
        cls, kwargs = torch.optim.RMSprop, {"momentum": config.momentum if config.momentum < 1 else 0.0}
    if config.cuda_graph and name != "sgd":
        kwargs["capturable"] = True  # their step counters stay on the GPU, so a graph can replay the step
    if name != "rmsprop":
        # Fused kernels (one launch for all parameters) exist for CPU and CUDA in torch >= 2.4.
        try:
            return cls(groups, lr=lr, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass
    return cls(groups, lr=lr, foreach=True, **kwargs)


def lr_factor(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """The schedule's multiplier of config.lr at a (0-based) optimizer step; 'plateau' is constant here
    and the ReduceLROnPlateau callback scales it."""
    total = config.epochs * steps_per_epoch
    epoch = step / steps_per_epoch
    schedule = config.schedule
    if schedule in ("constant", "plateau"):
        return 1.0
    if schedule == "step":
        return config.step_gamma ** int(epoch // max(1, config.step_epochs))
    warmup = config.warmup * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1.0, total - warmup))
    end = config.final_lr_fraction
    if schedule == "cosine":
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * progress))
    return end + (1 - end) * (1 - progress)  # onecycle: linear warm-up, then linear decay
