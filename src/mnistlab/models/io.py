"""Saving and loading models: weights in safetensors, plus a small JSON that says how to rebuild the model.

Loading never executes code from the file. The JSON holds the model's registry name and options (so
`create_model` rebuilds it), the temperature its logits are divided by (`models.calibration`), its dataset
and class names, and whatever metadata the caller adds. Your own
model's name is its builder reference (`models.user`), whose code is run only when the caller names it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import torch

from mnistlab._io import atomic_write, read_json, write_json
from mnistlab.errors import MnistlabError
from mnistlab.models.base import Classifier
from mnistlab.models.registry import create_model
from mnistlab.models.user import as_builder, is_reference

FORMAT_VERSION = 1


def save_model(model: Classifier, path: str | os.PathLike, **meta: Any) -> Path:
    """Write `<path>.safetensors` and `<path>.json` atomically; returns the .safetensors path."""
    from safetensors.torch import save

    path = Path(path).with_suffix("")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_write(path.with_suffix(".safetensors")) as f:
        f.write(save(state))
    write_json(path.with_suffix(".json"), {"format": FORMAT_VERSION, "model": model.spec,
                                           "temperature": model.temperature, **meta})
    return path.with_suffix(".safetensors")


def record_temperature(path: str | os.PathLike, temperature: float) -> None:
    """Write a fitted temperature into a saved model's description (the weights stay as they are)."""
    meta_path = Path(path).with_suffix(".json")
    write_json(meta_path, {**read_model_meta(meta_path), "temperature": float(temperature)})


def checked_temperature(value: Any, where: str) -> float:
    """A description's temperature (1 where there is none: saved before calibration), checked: a positive
    number, else one clear error."""
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise MnistlabError(f"{where}: the temperature its logits are divided by must be a positive number, got "
                            f"{value!r}; the description is damaged")
    return float(value)


def copy_checkpoint(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Copy a checkpoint (weights and description) to `destination` (.safetensors or no suffix); returns the
    new weights file."""
    import shutil

    source, destination = Path(source).with_suffix(""), Path(destination).with_suffix("")
    destination.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(source.with_suffix(suffix), destination.with_suffix(suffix))
    return destination.with_suffix(".safetensors")


def read_model_meta(path: str | os.PathLike) -> dict[str, Any]:
    meta_path = Path(path).with_suffix(".json")
    meta = read_json(meta_path, f"{meta_path}: model description not found (it is saved beside the weights)")
    if not isinstance(meta, dict) or "model" not in meta:
        raise MnistlabError(f"{meta_path}: not an mnistlab model description (no 'model' entry)")
    return meta


def check_description(spec: Any, where: str) -> dict[str, Any]:
    """A model description (`{"name", "num_classes", "image_shape", "options"}`) checked field by field, so
    that a damaged or hostile one is one clear error, not a traceback."""
    if not isinstance(spec, dict):
        raise MnistlabError(f"{where}: the model description is {type(spec).__name__}, not a table")
    missing = [key for key in ("name", "num_classes", "image_shape", "options") if key not in spec]
    if missing:
        raise MnistlabError(f"{where}: the model description lacks {', '.join(missing)}")
    shape = spec["image_shape"]
    if not (isinstance(spec["name"], str) and isinstance(spec["num_classes"], int) and spec["num_classes"] >= 1
            and isinstance(shape, list) and len(shape) == 2 and all(isinstance(d, int) and d >= 1 for d in shape)
            and isinstance(spec["options"], dict)):
        raise MnistlabError(f"{where}: the model description is damaged (name {spec['name']!r}, num_classes "
                            f"{spec['num_classes']!r}, image_shape {shape!r}, options {spec['options']!r})")
    return spec


def check_class_names(meta: dict[str, Any], num_classes: int, where: str) -> None:
    names = meta.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) != num_classes
                              or not all(isinstance(n, str) for n in names)):
        raise MnistlabError(f"{where}: class_names must be {num_classes} names, one per class the model "
                            f"predicts; got {names!r}")


def _build(spec: dict[str, Any], shapes: dict[str, tuple[int, ...]], weights: Path,
           builder: Callable[..., torch.nn.Module] | None = None) -> Classifier:
    """Rebuild a described model whose weights have `shapes` (from the safetensors header). A zoo model is
    built on the meta device first, so a description that does not fit the weights allocates nothing; your
    own model (`builder`, which the caller named) is built as it is, since its code may not run on meta."""
    if builder is None and is_reference(spec["name"]):
        reference = spec["name"]
        target, _, attr = reference.rpartition(":")
        how = (f"define {attr} again and pass mnistlab.load(path, model={attr}()) in Python, or put it in a file "
               f"and give --model path/to/file.py:{attr} on the command line" if target == "__main__" else
               f"pass model={reference!r} (or an instance) to mnistlab.load, or --model {reference} to the command")
        raise MnistlabError(f"{weights}: its model is your own ({reference}), and mnistlab runs no code a checkpoint "
                            f"names unless you name it too: {how}")

    def create(device: str) -> Classifier:
        with torch.device(device):
            return create_model(spec["name"], num_classes=spec["num_classes"], image_shape=tuple(spec["image_shape"]),
                                builder=builder, **spec["options"])

    try:
        model = create("meta" if builder is None else "cpu")
    except MnistlabError as e:
        raise MnistlabError(f"{weights}: its description does not build a model: {e}") from None
    except Exception as e:  # a builder that cannot run on the meta device, or a hostile option
        raise MnistlabError(f"{weights}: its description does not build a model ({type(e).__name__}: {e})") from None
    planned = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if planned != shapes:
        wrong = sorted(set(planned) ^ set(shapes)) or sorted(k for k in planned if planned[k] != shapes[k])
        whose = "the model you passed does not match it" if builder is not None else (
            "the description beside the weights is damaged, or belongs to other weights")
        raise MnistlabError(f"{weights}: weights do not fit model {spec['name']!r} as described (first difference: "
                            f"{wrong[0]}: {planned.get(wrong[0])} described, {shapes.get(wrong[0])} stored); {whose}")
    return model if builder is not None else create("cpu")


@contextlib.contextmanager
def _reading_weights(weights: Path):
    """Turn the ways a weights file can fail to read into one clear error that names it."""
    from safetensors import SafetensorError

    try:
        yield
    except FileNotFoundError:
        raise MnistlabError(f"{weights}: weights file not found") from None
    except (SafetensorError, OSError) as e:
        raise MnistlabError(f"{weights}: corrupt weights file ({e}); use another checkpoint") from None


def _header_shapes(weights: Path, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """The tensor shapes in a safetensors file's header (`prefix` stripped, others left out), read without
    loading the tensors."""
    from safetensors import safe_open

    with _reading_weights(weights), safe_open(str(weights), "pt") as f:
        return {k[len(prefix):]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(prefix)}


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    with _reading_weights(weights):
        return load_file(weights)


def _fill(model: Classifier, state: dict[str, torch.Tensor], weights: Path) -> Classifier:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise MnistlabError(f"{weights}: weights do not fit model {model.spec['name']!r}: "
                            f"{str(e).splitlines()[0]}") from None
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", model: Any = None
               ) -> tuple[Classifier, dict[str, Any]]:
    """Rebuild a saved model in eval mode; returns (model, metadata). The description is checked against the
    weights' header before anything is built. Your own model needs `model`: its reference, an instance or
    its builder (`models.user.as_builder`)."""
    weights = Path(path).with_suffix(".safetensors")
    meta = read_model_meta(weights)
    spec = check_description(meta["model"], str(weights.with_suffix(".json")))
    check_class_names(meta, spec["num_classes"], str(weights.with_suffix(".json")))
    built = _build(spec, _header_shapes(weights), weights, as_builder(model, copies=True))
    built.temperature = checked_temperature(meta.get("temperature"), str(weights.with_suffix(".json")))
    return _fill(built, _read_weights(weights), weights).to(device).eval(), meta


def load_weights_into(model: Classifier, path: str | os.PathLike) -> dict[str, Any]:
    """Fill `model` with a checkpoint's weights, if its description is `model`'s (name, options, classes and
    image shape); returns the checkpoint's description. Builds nothing, so your own model needs no code."""
    weights = Path(path).with_suffix(".safetensors")
    meta = read_model_meta(weights)
    spec = check_description(meta["model"], str(weights.with_suffix(".json")))
    if spec != model.spec:
        raise MnistlabError(f"{weights}: its model is {spec['name']} {spec['options']} for {spec['num_classes']} "
                            f"classes of {spec['image_shape']}, and the one to fill is {model.spec['name']} "
                            f"{model.spec['options']} for {model.spec['num_classes']} classes of "
                            f"{model.spec['image_shape']}")
    _fill(model, _read_weights(weights), weights)
    return spec


def read_export_metadata(path: str | os.PathLike) -> dict[str, str] | None:
    """The metadata in a safetensors file's header when `mnistlab export --format safetensors` wrote it
    (it names the models), else None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError):
        return None
    return metadata if "models" in metadata else None


def load_exported_models(path: str | os.PathLike, device: str | torch.device = "cpu", model: Any = None
                         ) -> tuple[list[Classifier], dict[str, Any]]:
    """The models in an exported safetensors file (one, or an ensemble's members), rebuilt from the specs
    in its header (your own model from `model`, as in `load_model`); returns (models in eval mode, metadata
    with its JSON values decoded)."""
    weights = Path(path)
    raw = read_export_metadata(weights)
    if raw is None:
        raise MnistlabError(f"{weights}: neither a checkpoint (no {weights.with_suffix('.json').name} beside it) "
                            f"nor a safetensors file written by mnistlab export")
    try:
        meta = {k: json.loads(v) if k in ("models", "class_names", "tta_mirror", "temperatures") else v
                for k, v in raw.items()}
    except json.JSONDecodeError as e:
        raise MnistlabError(f"{weights}: the description in its header is not valid JSON ({e})") from None
    if not isinstance(meta["models"], list) or not meta["models"]:
        raise MnistlabError(f"{weights}: its header describes no models")
    temperatures = meta.get("temperatures") or [None] * len(meta["models"])  # none: exported before calibration
    if not isinstance(temperatures, list) or len(temperatures) != len(meta["models"]):
        raise MnistlabError(f"{weights}: its header gives {temperatures!r} as the temperatures of "
                            f"{len(meta['models'])} models")
    state = _read_weights(weights)
    builder = as_builder(model, copies=True)
    models = []
    for i, spec in enumerate(meta["models"]):
        prefix = f"members.{i}."
        spec = check_description(spec, f"{weights} (member {i})")
        check_class_names(meta, spec["num_classes"], str(weights))
        member = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        built = _build(spec, _header_shapes(weights, prefix), weights, builder)
        built.temperature = checked_temperature(temperatures[i], f"{weights} (member {i})")
        models.append(_fill(built, member, weights).to(device).eval())
    return models, meta
