"""Your own model: where its code lives, and importing it when you name it.

A model that is not in the zoo is named by a *builder reference*, `path/to/file.py:function` or
`package.module:function` (a class works as the function), as `mnistlab train --model mynet.py:build` and
checkpoints write it. The builder is called with the model's options (`-o key=value`) and, when its
signature takes them, `num_classes` and `image_shape`; it returns an `nn.Module` that maps a batch of images
(N, 1, H, W) to logits (N, num_classes). The zoo's normalization is wrapped around it (`create_model`).

Code is imported only when the user names it: training and resuming a run import the reference its
settings hold; loading a checkpoint never does on its own (pass `model=` to `mnistlab.load`, `--model` to
the commands), because a checkpoint someone sent you must not run code.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from torch import nn

from mnistlab.errors import ConfigError

FORM = "path/to/file.py:function or package.module:function"


def is_reference(name: str) -> bool:
    """Whether a model name is a builder reference (the zoo's names have no colon)."""
    return ":" in name


def reference_of(model: Any) -> str:
    """The reference that names where `model` (a class, a function, or a module instance of a class) is
    defined, e.g. "__main__:MyCNN" for a class defined in a notebook."""
    target = model if inspect.isclass(model) or inspect.isfunction(model) else type(model)
    return f"{getattr(target, '__module__', '__main__')}:{target.__qualname__}"


def model_label(name: str) -> str:
    """A short name for run folders: the zoo name, a class's name (capitalized, by Python's custom), else the
    file's stem or the module's last part."""
    if not is_reference(name):
        return name
    target, _, attr = name.rpartition(":")
    attr = attr.split(".")[-1]
    if attr[:1].isupper() or target == "__main__":
        return attr
    return Path(target).stem if _is_file(target) else target.rsplit(".", 1)[-1]


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def import_builder(reference: str) -> Callable[..., nn.Module]:
    """The function or class a reference names, its file or module imported (a file once per process)."""
    target, colon, attr = reference.rpartition(":")
    if not colon or not target or not attr:
        raise ConfigError(f"model {reference!r} is neither a zoo name (`mnistlab models`) nor a reference of the "
                          f"form {FORM}")
    module = _import_file(Path(target).expanduser(), reference) if _is_file(target) else _import_module(target,
                                                                                                       reference)
    found: Any = module
    for part in attr.split("."):
        found = getattr(found, part, None)
        if found is None:
            defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                             and getattr(v, "__module__", None) == module.__name__)
            raise ConfigError(f"model {reference!r}: {target} defines no {attr!r} (it defines "
                              f"{', '.join(defined) or 'no functions or classes'})")
    if not callable(found):
        raise ConfigError(f"model {reference!r}: {attr} is a {type(found).__name__}, not a function or class that "
                          "builds an nn.Module")
    return found


def _import_file(path: Path, reference: str):
    if not path.is_file():
        raise ConfigError(f"model {reference!r}: no file {path}; give {FORM}")
    resolved = path.resolve()
    name = f"mnistlab_user_{resolved.stem}_{abs(hash(str(resolved))):x}"  # one module per file, never a clash
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as import does (dataclasses and pickling look it up)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ConfigError(f"model {reference!r}: importing {path} failed ({type(e).__name__}: {e})") from e
    return module


def _import_module(target: str, reference: str):
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as e:
        raise ConfigError(f"model {reference!r}: no module {e.name!r} to import (is it installed, or on "
                          f"PYTHONPATH?); give {FORM}") from None
    except Exception as e:
        raise ConfigError(f"model {reference!r}: importing {target} failed ({type(e).__name__}: {e})") from e


def call_builder(builder: Callable[..., Any], reference: str, num_classes: int, image_shape: tuple[int, int],
                 options: dict[str, Any]) -> nn.Module:
    """`builder(**options)`, adding num_classes and image_shape where its signature takes them; an option it
    does not take, or a builder that returns no nn.Module, is an error that names it."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builtin without a signature: give it the options alone
        params = {}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    known = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(known)) if not takes_any else []
    if unknown:
        offered = [n for n in known if n not in ("num_classes", "image_shape")]
        raise ConfigError(f"model {reference!r} has no option {', '.join(unknown)}; its options are "
                          f"{', '.join(offered + ['normalize', 'mean', 'std']) or 'normalize, mean, std'}")
    given = dict(options)
    for key, value in (("num_classes", num_classes), ("image_shape", tuple(image_shape))):
        if key not in given and (takes_any or key in known):
            given[key] = value
    try:
        net = builder(**given)
    except Exception as e:
        raise ConfigError(f"model {reference!r} cannot be built with options {options}: "
                          f"{type(e).__name__}: {e}") from e
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model {reference!r}: the builder returned a {type(net).__name__}, not a torch.nn.Module")
    return net


def instance_builder(module: nn.Module, copies: bool = False) -> Callable[..., nn.Module]:
    """A builder that hands back a module the user made: itself, so that `fit(MyCNN(), ...)` trains the
    user's own object as Keras's `model.fit` does, or (`copies`, for loading) a fresh copy each time, so
    that the members of an ensemble loaded with `model=MyCNN()` do not share one set of weights."""
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model must be a zoo name, a reference ({FORM}), an nn.Module or a function that "
                          f"builds one; got {type(module).__name__}")

    def give(**_options: Any) -> nn.Module:
        return copy.deepcopy(module) if copies else module

    return give


def as_builder(model: Any, copies: bool = False) -> Callable[..., nn.Module] | None:
    """What a user passes as `model=` when loading or training: a reference (imported now, as they named
    it), an nn.Module (copied for each model built, with `copies`), or a function or class that builds one;
    None stays None."""
    if model is None:
        return None
    if isinstance(model, str):
        if not is_reference(model):
            raise ConfigError(f"model {model!r}: to load your own model's code, give {FORM}")
        return import_builder(model)
    if isinstance(model, nn.Module):
        return instance_builder(model, copies)
    if callable(model):
        return model
    return instance_builder(model)  # raises the error that lists what a model may be
