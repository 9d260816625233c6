"""Saving and loading models: weights in safetensors, plus a small JSON that says how to rebuild the model.

Loading never executes code from the file. The JSON holds the model's registry name and options (so
`create_model` rebuilds it), its dataset and class names, and whatever metadata the caller adds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from mnistlab._io import atomic_write, write_json
from mnistlab.errors import MnistlabError
from mnistlab.models.base import Classifier
from mnistlab.models.registry import create_model

FORMAT_VERSION = 1


def save_model(model: Classifier, path: str | os.PathLike, **meta: Any) -> Path:
    """Write `<path>.safetensors` and `<path>.json` atomically; returns the .safetensors path."""
    from safetensors.torch import save

    path = Path(path).with_suffix("")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_write(path.with_suffix(".safetensors")) as f:
        f.write(save(state))
    write_json(path.with_suffix(".json"), {"format": FORMAT_VERSION, "model": model.spec, **meta})
    return path.with_suffix(".safetensors")


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
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise MnistlabError(f"{meta_path}: model description not found (it is saved beside the weights)") from None
    except json.JSONDecodeError as e:
        raise MnistlabError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or "model" not in meta:
        raise MnistlabError(f"{meta_path}: not an mnistlab model description (no 'model' entry)")
    return meta


def _build(spec: dict[str, Any]) -> Classifier:
    return create_model(spec["name"], num_classes=spec["num_classes"], image_shape=tuple(spec["image_shape"]),
                        **spec["options"])


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(weights)
    except FileNotFoundError:
        raise MnistlabError(f"{weights}: weights file not found") from None
    except (SafetensorError, OSError) as e:
        raise MnistlabError(f"{weights}: corrupt weights file ({e}); use another checkpoint") from None


def _fill(model: Classifier, state: dict[str, torch.Tensor], weights: Path) -> Classifier:
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise MnistlabError(f"{weights}: weights do not fit model {model.spec['name']!r}: "
                            f"{str(e).splitlines()[0]}") from None
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """Rebuild a saved model in eval mode; returns (model, metadata)."""
    weights = Path(path).with_suffix(".safetensors")
    meta = read_model_meta(weights)
    model = _fill(_build(meta["model"]), _read_weights(weights), weights)
    return model.to(device).eval(), meta


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


def load_exported_models(path: str | os.PathLike, device: str | torch.device = "cpu"
                         ) -> tuple[list[Classifier], dict[str, Any]]:
    """The models in an exported safetensors file (one, or an ensemble's members), rebuilt from the specs
    in its header; returns (models in eval mode, metadata with its JSON values decoded)."""
    weights = Path(path)
    raw = read_export_metadata(weights)
    if raw is None:
        raise MnistlabError(f"{weights}: neither a checkpoint (no {weights.with_suffix('.json').name} beside it) "
                            f"nor a safetensors file written by mnistlab export")
    meta = {k: json.loads(v) if k in ("models", "class_names", "tta_mirror") else v for k, v in raw.items()}
    state = _read_weights(weights)
    models = []
    for i, spec in enumerate(meta["models"]):
        prefix = f"members.{i}."
        member = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        models.append(_fill(_build(spec), member, weights).to(device).eval())
    return models, meta
