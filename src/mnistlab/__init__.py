"""mnistlab: train, compare and ship neural-network classifiers for MNIST-family image datasets.

The package reads like the data flow, and each layer imports only those before it:

    ground     _io, errors, choices, config, settings, devices, plots   (no torch in the first five)
    data/      IDX files, the dataset registry and downloads, the user's own files, splits, augmentation
    models/    the registry and the zoo, normalization inside the model, inference, checkpoints
    runs       run and ensemble folders (every name on disk), and metrics
    training/  the device-resident loader, the trainer, callbacks, whole runs
    predict, evaluation, ensemble, export, report, serve/, recipes/, reproduce   (looking inside, shipping)
    cli        the command: parses and calls the above

Submodules are imported on first use so the command line starts fast.
"""

from __future__ import annotations

from mnistlab._version import __version__

__all__ = ["__version__", "load", "summary"]


def load(path, device: str = "cpu"):
    """A `Predictor` for a run folder, an ensemble folder or a checkpoint: `.predict(images)` and
    `.predict_proba(images)` on raw arrays (N, 28, 28), (N, 1, 28, 28) or (N, 784), uint8 or float 0-255."""
    from mnistlab.predict import load as _load

    return _load(path, device)


def summary(model, input_shape: tuple[int, ...] | None = None, title: str = ""):
    """A Keras-style table of any `nn.Module` (a zoo model, or your own) for a batch of `input_shape`
    (channels, height, width; default (1, 28, 28), or a zoo model's own): each layer's output shape and
    parameters, then the totals. `print(mnistlab.summary(net))`; a notebook shows it as it is."""
    from mnistlab.models.summary import ModelSummary, format_summary

    title = title or getattr(model, "spec", {}).get("name") or type(model).__name__  # a zoo model's name
    return ModelSummary(format_summary(model, title, input_shape))
