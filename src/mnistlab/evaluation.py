"""Looking inside a trained model, ensemble or checkpoint: its metrics (`metrics.py`) and figures on any
split of its dataset, as `mnistlab evaluate` prints them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mnistlab.errors import ConfigError
from mnistlab.metrics import classification_metrics, write_metric_figures
from mnistlab.runs import RunFolder, run_folder_of


class Evaluation(dict):
    """The metrics `evaluate` returns (a dict: loss, accuracy, count, per_class, confusion_matrix, and
    members for an ensemble), printed as `mnistlab evaluate` prints them and shown in a notebook as a table
    with the confusion matrix."""

    def __str__(self) -> str:
        return format_metrics(self)

    def _repr_html_(self) -> str:
        from mnistlab import plots
        from mnistlab._html import png, table

        rows = [("accuracy", f"{self['accuracy']:.4f}"), ("loss", f"{self['loss']:.4f}"),
                ("calibration error (ECE)", f"{self['ece']:.4f}"), ("images", f"{self['count']:,}")]
        if "members" in self:
            rows.append(("members' accuracy", "  ".join(f"{a:.4f}" for a in self["members"])))
        rows += [(f"class {c['name']}", f"precision {c['precision']:.4f}, recall {c['recall']:.4f}, "
                                        f"f1 {c['f1']:.4f}, {c['support']:,} images") for c in self["per_class"]]
        names = [c["name"] for c in self["per_class"]]
        figure = plots.confusion_matrix_plot(np.array(self["confusion_matrix"]), names)
        return table(rows, "evaluation") + png(figure, "confusion matrix")


def evaluate(predictor, images: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike | None = None,
             title: str = "", tta: bool = False, split: str = "test") -> Evaluation:
    """Metrics of a Predictor on (images, labels), with test-time augmentation if `tta`; with `out_dir`, also
    the confusion matrix and worst mistakes as figures. For an ensemble, each member's accuracy is reported
    beside the ensemble's."""
    from mnistlab.data.arrays import check_labels

    labels = check_labels(labels, len(images), len(predictor.class_names), "labels to evaluate on")
    members = predictor.member_proba(images, tta=tta)
    proba = np.mean(members, axis=0)
    result = Evaluation(classification_metrics(proba, labels, predictor.class_names))
    if predictor.is_ensemble:
        result["members"] = [float((p.argmax(1) == labels).mean()) for p in members]
    if out_dir is not None:
        result["figures"] = write_metric_figures(result, proba, images, labels, predictor.class_names, out_dir, title,
                                                 split)
    return result


def format_metrics(result: dict[str, Any]) -> str:
    lines = [f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}  calibration error (ECE) "
             f"{result['ece']:.4f}  ({result['count']:,} images)"]
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
                   data_dir: str | os.PathLike | None = None, tta: bool = False, model: Any = None,
                   dataset: str | None = None) -> tuple[Path, str, dict[str, Any]]:
    """Evaluate a run folder, ensemble folder or checkpoint on a split of its dataset, or of another
    `dataset` with the same classes (e.g. `uci-digits`, real handwriting from outside MNIST), writing the
    figures to `out_dir` (default: the run's or ensemble's folder). Returns (folder, dataset name, metrics).
    Your own model needs `model` (see `mnistlab.load`)."""
    from mnistlab.predict import load

    predictor = load(path, model=model)
    folder = run_folder_of(predictor.source)
    run = RunFolder(folder)
    settings = run.settings() if run.exists() else None
    if dataset is None:
        dataset = (run.dataset_source() if run.exists() else None) or predictor.meta.get("dataset")
        if not dataset:
            raise ConfigError(f"{path} does not record its dataset; evaluate the run it came from")
        images, labels = load_split(dataset, split, settings, data_dir)
    else:
        images, labels = load_other_split(dataset, split, predictor.class_names, data_dir)
    result = evaluate(predictor, images, labels, Path(out_dir) if out_dir else folder,
                      f"({folder.name}, {split}{', TTA' if tta else ''})", tta, split)
    return folder, dataset, result


def load_other_split(dataset: str, split: str, class_names: Sequence[str],
                     data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of "train" or "test" of a dataset other than the model's own, which must name the same
    classes in the same order (its held-out validation split is the run's, and this is not that data)."""
    from mnistlab.data.dataset import load_dataset

    if split == "val":
        raise ConfigError("--split val is the run's own held-out data; with --dataset, choose test or train")
    data = load_dataset(dataset, data_dir)
    if tuple(data.class_names) != tuple(class_names):
        raise ConfigError(f"the dataset {dataset!r} has the classes {', '.join(data.class_names)}, and the model "
                          f"was trained on {', '.join(class_names)}: evaluate it on a dataset of its own classes")
    if split == "train" and not len(data.train_images):
        raise ConfigError(f"the dataset {dataset!r} has no training split; evaluate on its test split")
    return data.split(split)


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
    from mnistlab.data.splits import split_dataset

    parts = split_dataset(data, settings.get("validation", "split"), settings.get("val_split", 0.1),
                          settings.get("seed", 0), settings.get("subset", 0), torch.device("cpu"))
    return parts.val_x.numpy(), parts.val_y.numpy()
