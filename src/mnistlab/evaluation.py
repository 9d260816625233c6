"""Looking inside a trained model: loss, accuracy, per-class precision/recall/F1, confusion matrix, mistakes,
and test-time augmentation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.errors import ConfigError
from mnistlab.models.base import as_image_batch
from mnistlab.models.inference import batched_logits

# Test-time augmentation: the image itself and its 1-pixel shifts; their left-right mirrors only for models
# trained with mirroring (clothes: `augment.flip`), never by default, since digits are not symmetric.
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def shift_images(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift (N, 1, H, W) by whole pixels, filling with background 0."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def tta_logits(model, images, batch_size: int = 2000, autocast_dtype=None, channels_last: bool = False,
               mirror: bool = False):
    """Logits averaged over the image and its 1-pixel shifts, and with `mirror` over their mirrors too."""
    x = as_image_batch(images if isinstance(images, torch.Tensor) else torch.as_tensor(images), model.image_shape)
    views = [(dy, dx, mirrored) for mirrored in ((False, True) if mirror else (False,)) for dy, dx in TTA_SHIFTS]
    total = None
    for dy, dx, mirrored in views:  # one view in memory at a time: a whole split can be 10 copies of itself
        view = shift_images(x, dy, dx)
        logits = batched_logits(model, view.flip(-1) if mirrored else view, batch_size, autocast_dtype, channels_last)
        total = logits if total is None else total + logits
    return total / len(views)


def classification_metrics(proba: np.ndarray, labels: np.ndarray, class_names) -> dict[str, Any]:
    """Loss (cross-entropy of the probabilities), accuracy, per-class precision/recall/F1 and the confusion
    matrix (true class by row, predicted by column)."""
    labels = np.asarray(labels).astype(np.int64)
    k = len(class_names)
    predicted = proba.argmax(axis=1)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    per_class = []
    for c, name in enumerate(class_names):
        tp = confusion[c, c]
        precision = tp / confusion[:, c].sum() if confusion[:, c].sum() else 0.0
        recall = tp / confusion[c].sum() if confusion[c].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": c, "name": name, "precision": float(precision), "recall": float(recall),
                          "f1": float(f1), "support": int(confusion[c].sum())})
    p_true = np.clip(proba[np.arange(len(labels)), labels], 1e-12, 1.0)
    return {"count": int(len(labels)), "loss": float(-np.log(p_true).mean()),
            "accuracy": float((predicted == labels).mean()), "per_class": per_class,
            "confusion_matrix": confusion.tolist()}


def worst_mistakes(proba: np.ndarray, labels: np.ndarray, count: int = 25) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence."""
    predicted = proba.argmax(axis=1)
    wrong = np.nonzero(predicted != labels)[0]
    return wrong[np.argsort(-proba[wrong].max(axis=1))][:count]


def evaluate(predictor, images: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike | None = None,
             title: str = "", tta: bool = False) -> dict[str, Any]:
    """Metrics of a Predictor on (images, labels), with test-time augmentation if `tta`; with `out_dir`, also
    confusion.png and mistakes.png. For an ensemble, each member's accuracy is reported beside the ensemble's."""
    from mnistlab import plots

    members = predictor.member_proba(images, tta=tta)
    proba = np.mean(members, axis=0)
    result = classification_metrics(proba, labels, predictor.class_names)
    if predictor.is_ensemble:
        result["members"] = [float((p.argmax(1) == labels).mean()) for p in members]
    if out_dir is not None:
        out_dir = Path(out_dir)
        result["figures"] = {
            "confusion": str(plots.confusion_matrix_plot(np.array(result["confusion_matrix"]), predictor.class_names,
                                                         out_dir / "confusion.png", f"Confusion matrix {title}")),
        }
        worst = worst_mistakes(proba, labels)
        if len(worst):
            result["figures"]["mistakes"] = str(plots.mistakes_grid(
                images[worst], labels[worst], proba[worst].argmax(1), proba[worst].max(1), predictor.class_names,
                out_dir / "mistakes.png", f"Most confident mistakes {title}"))
    return result


def format_metrics(result: dict[str, Any]) -> str:
    lines = [f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  ({result['count']:,} images)"]
    if "members" in result:
        lines.append("members: " + "  ".join(f"{a:.4f}" for a in result["members"]))
    width = max(len(c["name"]) for c in result["per_class"])
    lines.append(f"\n{'class':<{width}}  precision  recall      f1  support")
    for c in result["per_class"]:
        lines.append(f"{c['name']:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:6.4f}  "
                     f"{c['support']:7,}")
    names = [c["name"][:6] for c in result["per_class"]]
    lines.append("\nconfusion matrix (rows: true, columns: predicted)")
    lines.append(" " * (width + 1) + "".join(f"{n:>7}" for n in names))
    for c, row in zip(result["per_class"], result["confusion_matrix"]):
        lines.append(f"{c['name']:<{width}} " + "".join(f"{v:>7}" for v in row))
    return "\n".join(lines)


def evaluate_saved(path: str | os.PathLike, split: str = "test", out_dir: str | os.PathLike | None = None,
                   data_dir: str | os.PathLike | None = None, tta: bool = False) -> tuple[Path, str, dict[str, Any]]:
    """Evaluate a run folder, ensemble folder or checkpoint on a split of its dataset, writing the figures
    to `out_dir` (default: the run's or ensemble's folder). Returns (folder, dataset name, metrics)."""
    from mnistlab.predict import load
    from mnistlab.runs import RunFolder

    predictor = load(path)
    source = Path(predictor.source)
    folder = source if source.is_dir() else source.parent.parent if source.parent.name == "checkpoints" else \
        source.parent  # a run's checkpoint, or a file of its own (an export)
    settings = RunFolder(folder).settings() if (folder / RunFolder.SETTINGS).is_file() else None
    dataset = (settings or {}).get("dataset") or predictor.meta.get("dataset")
    if not dataset:
        raise ConfigError(f"{path} does not record its dataset; evaluate the run it came from")
    images, labels = load_split(dataset, split, settings, data_dir)
    result = evaluate(predictor, images, labels, Path(out_dir) if out_dir else folder,
                      f"({folder.name}, {split}{', TTA' if tta else ''})", tta)
    return folder, dataset, result


def load_split(dataset: str, split: str, settings: dict[str, Any] | None = None,
               data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of "train", "test" or "val"; "val" is the held-out part of train that a run's
    settings (seed, val_split, subset) define, so only a run can say what it was."""
    from mnistlab.data.dataset import load_dataset

    data = load_dataset(dataset, data_dir or (settings or {}).get("data_dir"))
    if split in ("train", "test"):
        return data.split(split)
    if split != "val":
        raise ConfigError(f"unknown split {split!r}; choose train, test or val")
    if not settings or settings.get("validation", "split") not in ("split", "last"):
        raise ConfigError("--split val needs a run trained with a held-out validation split")
    from mnistlab.training.loader import split_dataset

    parts = split_dataset(data, settings.get("validation", "split"), settings.get("val_split", 0.1),
                          settings.get("seed", 0), settings.get("subset", 0), torch.device("cpu"))
    return parts.val_x.numpy(), parts.val_y.numpy()
