"""Prediction: a `Predictor` over one model or an ensemble, and predictions for the user's own files.

`mnistlab.load(path)` takes a run folder, an ensemble folder or a checkpoint (.safetensors) and returns a
Predictor whose `predict`/`predict_proba` take raw images of shape (N, H, W), (N, 1, H, W) or (N, H*W),
uint8 or float, pixel values 0-255 with a dark background (as in MNIST). Reading pictures, .npy and IDX
files, and the MNIST-style preprocessing of photos, live in `data/inputs.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mnistlab.data.inputs import INPUT_KINDS, InputLimits, expand_folders, images_from_file
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.models.base import Classifier
from mnistlab.models.inference import batched_logits, occlusion_map, views_for
from mnistlab.models.io import load_exported_models, load_model
from mnistlab.runs import EnsembleFolder, RunFolder


def check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")


@dataclass
class Predictor:
    """One model, or several whose class probabilities are averaged (an ensemble)."""

    models: list[Classifier]
    class_names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    tta_mirror: Sequence[bool] = ()  # per member: trained with mirroring, so TTA adds mirrored views

    def __post_init__(self):
        self.tta_mirror = tuple(self.tta_mirror) or (False,) * len(self.models)

    def __repr__(self) -> str:  # the modules' own repr would fill a screen
        names = ", ".join(sorted({m.spec["name"] for m in self.models}))
        what = f"an ensemble of {len(self.models)} ({names})" if self.is_ensemble else names
        return f"Predictor({what}, {len(self.class_names)} classes, from {self.source})"

    def _repr_html_(self) -> str:
        """In a notebook: the models, their classes and where they came from."""
        from mnistlab._html import table

        names = [m.spec["name"] for m in self.models]
        return table([("models", ", ".join(names)), ("ensemble", f"yes, of {len(names)}" if self.is_ensemble else "no"),
                      ("classes", ", ".join(self.class_names)), ("dataset", self.meta.get("dataset", "-")),
                      ("input", f"raw pixels 0-255, {self.image_shape[0]}x{self.image_shape[1]}"),
                      ("source", self.source)], "predictor")

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.models[0].image_shape

    @property
    def is_ensemble(self) -> bool:
        return len(self.models) > 1

    def member_proba(self, images, batch_size: int = 2000, tta: bool = False) -> list[np.ndarray]:
        """Each member's probabilities (N, classes); with `tta`, from logits averaged over the image and its
        1-pixel shifts (and their mirrors, for models trained with them), as training's TTA does."""
        probabilities = []
        for model, mirror in zip(self.models, self.tta_mirror):
            logits = batched_logits(model, images, batch_size, views=views_for(tta, mirror))
            probabilities.append(torch.softmax(logits, dim=1).cpu().numpy())
        return probabilities

    def predict_proba(self, images, batch_size: int = 2000, tta: bool = False) -> np.ndarray:
        """Class probabilities (N, classes) float32: the members' average for an ensemble."""
        return np.mean(self.member_proba(images, batch_size, tta), axis=0).astype(np.float32)

    def predict(self, images, batch_size: int = 2000, tta: bool = False) -> np.ndarray:
        """Predicted class indices (N,) int64."""
        return self.predict_proba(images, batch_size, tta).argmax(axis=1)

    def describe(self, images, top_k: int = 3, tta: bool = False) -> list[dict[str, Any]]:
        """Per image: the predicted class, its name and probability, and the `top_k` most probable classes
        (what `mnistlab predict --json` and the server answer)."""
        check_top_k(top_k)
        out = []
        for row in self.predict_proba(images, tta=tta):
            order = np.argsort(-row)[:top_k]
            out.append({"class": int(order[0]), "name": self.class_names[order[0]], "probability": float(row[order[0]]),
                        "top": [{"class": int(c), "name": self.class_names[c], "probability": float(row[c])}
                                for c in order]})
        return out

    def saliency(self, image: np.ndarray, target: int | None = None, tta: bool = False) -> np.ndarray:
        """Which pixels of one image (H, W) uint8 drove the answer for class `target` (default: the predicted
        one): an occlusion map (H, W) in [-1, 1] (see `models.inference.occlusion_map`)."""
        image = np.asarray(image)
        if target is None:
            target = int(self.predict(image[None], tta=tta)[0])
        return occlusion_map(lambda batch: self.predict_proba(batch, tta=tta), image, target)


def load(path: str | os.PathLike, device: str = "cpu", model: Any = None) -> Predictor:
    """A Predictor from a run folder (its best checkpoint), an ensemble folder, a checkpoint's .safetensors
    file, or a safetensors file that `export` wrote. A model of your own is rebuilt with `model` (see
    `models.io.load_model`)."""
    path = Path(path)
    ensemble = EnsembleFolder(path)
    if ensemble.exists():
        spec = ensemble.spec()
        loaded = [load_model(member, device, model) for member in ensemble.members()]
        return Predictor([m for m, _ in loaded], tuple(spec["class_names"]), spec, path,
                         [meta.get("tta_mirror", False) for _, meta in loaded])
    if path.is_dir():
        run, path = RunFolder(path), RunFolder(path).checkpoint_path("best")
        if not path.is_file():
            raise MnistlabError(f"{run.path} is neither a finished run nor an ensemble "
                                f"(no {path.relative_to(run.path)}, no {EnsembleFolder.SPEC})")
    elif not path.exists():
        raise MnistlabError(f"{path}: no such run, ensemble or checkpoint")
    elif path.suffix == ".safetensors" and not path.with_suffix(".json").exists():
        models, meta = load_exported_models(path, device, model)
        return Predictor(models, tuple(meta["class_names"]), meta, path, meta.get("tta_mirror", ()))
    loaded, meta = load_model(path, device, model)
    names = meta.get("class_names") or [str(i) for i in range(loaded.num_classes)]
    return Predictor([loaded], tuple(names), meta, path, [meta.get("tta_mirror", False)])


def predict_files(predictor: Predictor, paths: Sequence[str | os.PathLike], top_k: int = 3,
                  preprocess: bool = True, tta: bool = False, limits: InputLimits = InputLimits(),
                  keep_images: bool = False) -> list[dict[str, Any]]:
    """One result per file (a folder stands for the files in it): its predictions (one per image in the
    file) or its error; a bad file does not stop the others. Each file is read within `limits`. With
    `keep_images`, each result also holds the images (N, H, W) the model saw ("images"), e.g. for
    `plots.prediction_grid`."""
    check_top_k(top_k)  # before any file is read: one error, not one per file
    results = []
    for path in expand_folders(paths):
        if path.is_dir():
            results.append({"file": str(path), "error": f"{path}: the folder holds no {INPUT_KINDS}"})
            continue
        try:
            images = images_from_file(path, predictor.image_shape, preprocess, limits)
        except MnistlabError as e:
            results.append({"file": str(path), "error": str(e)})
            continue
        results.append({"file": str(path), "predictions": predictor.describe(images, top_k, tta),
                        **({"images": images} if keep_images else {})})
    return results
