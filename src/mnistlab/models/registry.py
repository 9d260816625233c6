"""Models by name, timm-style: `@register_model` on a small builder, `create_model(name, **options)`."""

from __future__ import annotations

import fnmatch
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from mnistlab.config import check_type
from mnistlab.errors import ConfigError
from mnistlab.models.base import Classifier, Normalize
from mnistlab.models.user import call_builder, import_builder, is_reference

# Options every model takes, handled here rather than by each builder.
COMMON_OPTIONS = ("normalize", "mean", "std")
# your own model's default normalization: one mean and std (as the PyTorch tutorials' Normalize((0.1307,),
# (0.3081,))), so that a module written for standardized inputs takes raw pixels
USER_NORMALIZE = "global"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    description: str
    normalize: str  # default normalization mode
    preset: dict[str, Any] = field(default_factory=dict)  # options fixed by this name
    # Training settings this model needs where mnistlab's defaults (tuned for its batch-norm nets) do not suit
    # it; they sit under a recipe, a config file and flags, which all still override them.
    train_settings: dict[str, Any] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The builder's keyword options and their defaults, with this name's preset applied."""
        params = inspect.signature(self.builder).parameters
        defaults = {k: p.default for k, p in params.items() if k not in ("num_classes", "image_shape")}
        return {**defaults, **self.preset}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """`options` converted to the builder's type hints ([128, 64] -> (128, 64)); a wrong type is an error
        that names the option, not a TypeError from deep inside the builder."""
        hints = typing.get_type_hints(self.builder)
        return {k: check_type(k, v, hints[k], f"model {self.name!r} option") if k in hints else v
                for k, v in options.items()}


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, normalize: str = "scale", preset: dict | None = None, description: str = "",
                   train_settings: dict | None = None):
    """Register `builder(num_classes, image_shape, **options) -> nn.Module` under `name` (and return it)."""

    def decorate(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or (inspect.getdoc(builder) or "").split("\n")[0]
        _MODELS[name] = ModelEntry(name, builder, doc, normalize, dict(preset or {}), dict(train_settings or {}))
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    return [n for n in _MODELS if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_model_entry(name: str) -> ModelEntry:
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(_MODELS)}") from None


def create_model(name: str, num_classes: int = 10, image_shape: tuple[int, int] = (28, 28),
                 builder: Callable[..., nn.Module] | None = None, import_code: bool = False,
                 **options: Any) -> Classifier:
    """Build the model registered as `name`, or your own (`builder`, under its reference `name`; see
    `models.user`; with `import_code`, where the user named the reference, the code it names): a
    `Classifier` that takes raw pixels and returns logits.

    `options` are the builder's keyword options (see `mnistlab models show NAME`) plus `normalize`
    ("scale", "global" or "standardize") and, with "global", fixed `mean` and `std` of pixels scaled to 0-1.
    """
    spec = {"name": name, "num_classes": num_classes, "image_shape": list(image_shape), "options": dict(options)}
    if builder is not None or is_reference(name):
        if builder is None and import_code:
            builder = import_builder(name)
        if builder is None:
            raise ConfigError(f"model {name!r} is your own code, which mnistlab imports only when you name it; "
                              "pass it (model=..., --model)")
        normalize = Normalize(options.pop("normalize", USER_NORMALIZE) or USER_NORMALIZE, image_shape,
                              options.pop("mean", None), options.pop("std", None))
        net = call_builder(builder, name, num_classes, image_shape, options)
        model = Classifier(net, normalize, image_shape, num_classes)
        _check_logits(model, name)
    else:
        entry = get_model_entry(name)
        known = entry.options()
        unknown = sorted(set(options) - set(known) - set(COMMON_OPTIONS))
        if unknown:
            raise ConfigError(
                f"model {name!r} has no option {', '.join(unknown)}; its options are "
                f"{', '.join(list(known) + list(COMMON_OPTIONS))}"
            )
        normalize = Normalize(options.pop("normalize", entry.normalize) or entry.normalize, image_shape,
                              options.pop("mean", None), options.pop("std", None))
        options = entry.check_options(options)
        try:
            net = entry.builder(num_classes=num_classes, image_shape=tuple(image_shape), **{**entry.preset, **options})
        except (ValueError, RuntimeError) as e:  # e.g. a negative width: torch's own message, with the model named
            raise ConfigError(f"model {name!r} cannot be built with options {spec['options']}: {e}") from None
        model = Classifier(net, normalize, image_shape, num_classes)
    model.spec = spec  # everything needed to rebuild it: create_model(**spec) (see models.io)
    return model


def _check_logits(model: Classifier, name: str) -> None:
    """One forward pass of two blank images: your model must give logits (2, num_classes). It also sets the
    shapes of lazy layers (nn.LazyLinear), so that the weights can be saved and loaded."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device.type == "meta" for t in tensors):  # planning a load on the meta device: nothing can run
        return
    device = tensors[0].device
    was_training = model.training
    blank = torch.zeros(2, 1, *model.image_shape, device=device)
    try:
        with torch.no_grad():
            logits = model.eval()(blank)
    except Exception as e:
        raise ConfigError(f"model {name!r} fails on a batch of shape {tuple(blank.shape)} (N, 1, H, W): "
                          f"{type(e).__name__}: {e}") from e
    finally:
        model.train(was_training)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, model.num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ConfigError(f"model {name!r} maps a batch of shape {tuple(blank.shape)} to {got}; it must return "
                          f"logits of shape (N, {model.num_classes}), one score per class")


def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad == trainable)
