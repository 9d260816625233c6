"""Pictures: sample grids, augmentation previews, training curves, confusion matrices, mistakes and sweeps.

Every function returns a matplotlib `Figure` (a notebook shows it inline) and, given `out`, also writes it
as a PNG atomically. Figures are made without pyplot, so the user's matplotlib backend and pyplot's list of
open figures are never touched.
"""

from __future__ import annotations

import functools
import io
import math
import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from mnistlab._io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@functools.cache
def _figure_class() -> type:
    """matplotlib's Figure, able to show itself in a notebook: without pyplot, the inline backend never
    registers its display of figures, so the figure draws itself as PNG (`_repr_png_`)."""
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
            return buffer.getvalue()

    return ShownFigure


def _figure(figsize: tuple[float, float]) -> Figure:
    return _figure_class()(figsize=figsize)


def _save(fig: Figure, out: str | os.PathLike | None) -> Figure:
    """Write `fig` as PNG to `out` (atomically), when given; returns the figure."""
    if out is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        with atomic_write(out) as f:
            f.write(buffer.getvalue())
    return fig


def image_grid(images: np.ndarray, titles: Sequence[str], out: str | os.PathLike | None = None, title: str = "",
               columns: int = 0, title_colors: Sequence[str] | None = None) -> Figure:
    """A grid of grey images (N, H, W) uint8, each with its caption above it. The images are tiled into one
    picture drawn in one Axes: an Axes per image drew 25 mistakes in 0.8 s, the tiled picture in 0.2 s."""
    images = np.asarray(images)
    n, h, w = images.shape
    columns = max(1, columns or min(n, math.ceil(math.sqrt(n))))
    rows = max(1, math.ceil(n / columns))
    inch = 1.2 / w  # inches per pixel: each image 1.2 in wide, as wide as its caption's 8 pt text needs
    lines = max((caption.count("\n") + 1 for caption in titles), default=0)
    gap, band = round(0.3 / inch), math.ceil((0.14 * lines + 0.1) / inch)  # pixels between columns, for captions
    cell_w, cell_h = w + gap, h + band
    corners = [((i // columns) * cell_h + band, (i % columns) * cell_w + gap // 2) for i in range(n)]
    tiled = np.zeros((rows * cell_h, columns * cell_w), np.uint8)  # 0: the background, white in gray_r
    for image, (top, left) in zip(images, corners):
        tiled[top:top + h, left:left + w] = image
    head, width, height = (0.4 if title else 0.0), columns * cell_w * inch, rows * cell_h * inch
    fig = _figure((width, height + head))
    ax = fig.add_axes((0, 0, 1, height / (height + head)))
    ax.imshow(tiled, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    for i, (caption, (top, left)) in enumerate(zip(titles, corners)):
        ax.text(left + w / 2, top - 0.05 / inch, caption, ha="center", va="bottom", fontsize=8,
                color=title_colors[i] if title_colors else "black")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                out: str | os.PathLike | None = None, title: str = "", indices: Sequence[int] | None = None) -> Figure:
    """Labelled samples: caption "index: class name"."""
    indices = list(indices) if indices is not None else list(range(len(images)))
    captions = [f"#{i}: {class_names[int(labels[k])]}" for k, i in enumerate(indices)]
    return image_grid(images, captions, out, title)


def augmentation_preview(original: np.ndarray, augmented: np.ndarray, caption: str,
                         out: str | os.PathLike | None = None, title: str = "") -> Figure:
    """One image (H, W) beside its augmented copies (K, H, W)."""
    images = np.concatenate([original[None], augmented])
    return image_grid(images, ["original"] + [f"augmented {i + 1}" for i in range(len(augmented))], out,
                      title or caption)


def training_curves(histories: dict[str, list[dict]], out: str | os.PathLike | None = None) -> Figure:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), for one or several runs."""
    fig = _figure((11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, rows) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = [r["epoch"] for r in rows]
        marker = "o" if len(rows) <= 20 else None  # a one-epoch run is a point, not an invisible line
        for ax, key in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, [r[key] for r in rows], color=color, marker=marker, markersize=3, label=f"{name} train")
            val = [r.get(f"val_{key}") for r in rows]
            if any(v is not None and not math.isnan(v) for v in val):
                ax.plot(epochs, [np.nan if v is None else v for v in val], color=color, linestyle="--",
                        marker=marker, markersize=3, label=f"{name} validation")
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_yscale("log")
    # plain numbers at 1, 2 and 5 times each power of ten (0.2, not 2x10^-1): mathtext's parser, which the
    # default labels need, took 0.2 s to start
    ax_loss.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax_loss.yaxis.set_minor_formatter(NullFormatter())
    return _save(fig, out)


def confusion_matrix_plot(matrix: np.ndarray, class_names: Sequence[str], out: str | os.PathLike | None = None,
                          title: str = "Confusion matrix") -> Figure:
    """Counts, true class by row and predicted class by column."""
    k = len(class_names)
    fig = _figure((1 + 0.6 * k, 0.8 + 0.55 * k))
    ax = fig.subplots()
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for t in range(k):
        for p in range(k):
            if matrix[t, p]:
                ax.text(p, t, str(matrix[t, p]), ha="center", va="center", fontsize=7,
                        color="white" if t == p else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, out)


def mistakes_grid(images: np.ndarray, true: Sequence[int], predicted: Sequence[int], confidence: Sequence[float],
                  class_names: Sequence[str], out: str | os.PathLike | None = None,
                  title: str = "Most confident mistakes") -> Figure:
    captions = [f"true {class_names[t]}\npred {class_names[p]} {c:.0%}"
                for t, p, c in zip(true, predicted, confidence)]
    return image_grid(images, captions, out, title, title_colors=["firebrick"] * len(images))


def prediction_grid(images: np.ndarray, predictions: Sequence[dict], out: str | os.PathLike | None = None,
                    title: str = "Predictions", names: Sequence[str] | None = None, limit: int = 100,
                    truth: Sequence[str] | None = None) -> Figure:
    """What a model saw (N, H, W) uint8 and what it answered (`Predictor.describe`'s dicts): each image with
    its predicted class and probability, its file name when `names` are given, and its true class when
    `truth` (class names) is, a wrong answer in red; at most `limit` images."""
    shown = min(len(images), limit)
    captions = [f"{(names[i] + chr(10)) if names else ''}{p['name']} {p['probability']:.0%}"
                + (f"{chr(10)}true {truth[i]}" if truth is not None else "")
                for i, p in enumerate(predictions[:shown])]
    colors = None if truth is None else ["black" if p["name"] == truth[i] else "red"
                                         for i, p in enumerate(predictions[:shown])]
    if shown < len(images):
        title = f"{title} (the first {shown} of {len(images)})"
    return image_grid(np.asarray(images[:shown]), captions, out, title, title_colors=colors)


def sweep_scatter(rows: Sequence[dict], settings: Sequence[tuple[str, str]], metric: str,
                  out: str | os.PathLike | None = None, title: str = "") -> Figure:
    """A sweep's trials: `metric` against each swept setting (`settings`: its name and axis, "linear", "log"
    or "category" for listed values), one panel each; trials that ran to the end in blue, those stopped early
    in grey. `rows` are `sweep.trial_rows`' (settings, the metric, state)."""
    fig = _figure((3.6 * len(settings), 3.2))
    axes = fig.subplots(1, len(settings), squeeze=False)[0]
    for ax, (name, axis) in zip(axes, settings):
        values = {r["settings"][name] for r in rows} if axis == "category" else set()
        categories = [str(v) for v in sorted(values, key=lambda v: (0, v, "") if isinstance(v, (int, float))
                                             else (1, 0, str(v)))]
        for state, color in (("stopped early", "0.6"), ("finished", "tab:blue")):
            points = [(r["settings"][name], r[metric]) for r in rows if r["state"] == state and r[metric] is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            if categories:
                xs = [categories.index(str(x)) for x in xs]
            ax.scatter(xs, ys, s=22, color=color, label=state)
        if categories:
            ax.set_xticks(range(len(categories)), categories)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        if axis == "log":
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out)
