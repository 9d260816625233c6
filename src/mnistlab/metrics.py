"""Classification metrics of predicted probabilities against labels, and their figures.

Shared by training (the test figures of a finished run) and evaluation (any split of a saved model); pure
numpy on (N, classes) probabilities and (N,) labels.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from mnistlab.models.calibration import expected_calibration_error
from mnistlab.runs import figure_path


def classification_metrics(proba: np.ndarray, labels: np.ndarray, class_names) -> dict[str, Any]:
    """Loss (cross-entropy of the probabilities), accuracy, calibration error (`ece`), per-class
    precision/recall/F1 and the confusion matrix (true class by row, predicted by column)."""
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
            "accuracy": float((predicted == labels).mean()), "ece": expected_calibration_error(proba, labels),
            "per_class": per_class,
            "confusion_matrix": confusion.tolist()}


def worst_mistakes(proba: np.ndarray, labels: np.ndarray, count: int = 25) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence."""
    predicted = proba.argmax(axis=1)
    wrong = np.nonzero(predicted != labels)[0]
    return wrong[np.argsort(-proba[wrong].max(axis=1))][:count]


def write_metric_figures(result: dict[str, Any], proba: np.ndarray, images: np.ndarray, labels: np.ndarray,
                         class_names: Sequence[str], out_dir: str | os.PathLike, title: str = "",
                         split: str = "test") -> dict[str, str]:
    """The confusion matrix of `result` (from `classification_metrics`) and the most confident mistakes on
    `split`, as figures in `out_dir`; returns {figure: path}."""
    from mnistlab import plots

    figures = {"confusion": figure_path(out_dir, "confusion", split)}
    plots.confusion_matrix_plot(np.array(result["confusion_matrix"]), class_names, figures["confusion"],
                                f"Confusion matrix {title}")
    worst = worst_mistakes(proba, labels)
    if len(worst):
        figures["mistakes"] = figure_path(out_dir, "mistakes", split)
        plots.mistakes_grid(images[worst], labels[worst], proba[worst].argmax(1), proba[worst].max(1), class_names,
                            figures["mistakes"], f"Most confident mistakes {title}")
    return {name: str(path) for name, path in figures.items()}
