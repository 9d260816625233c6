"""mnistlab: train, compare and ship neural-network classifiers for MNIST-family image datasets.

The pipeline reads like the package: `data` -> `models` -> `training` -> `runs` -> `evaluation`, `plots`,
`export` -> `cli`. Submodules are imported on first use so the command line starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """A `Predictor` for a run folder, an ensemble folder or a checkpoint: `.predict(images)` and
    `.predict_proba(images)` on raw arrays (N, 28, 28), (N, 1, 28, 28) or (N, 784), uint8 or float 0-255."""
    from mnistlab.predict import load as _load

    return _load(path, device)
