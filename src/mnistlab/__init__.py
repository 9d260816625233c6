"""mnistlab: train, compare and ship neural-network classifiers for MNIST-family image datasets.

The pipeline reads like the package: `data` -> `models` -> `training` -> `runs` -> `evaluation`, `plots`,
`export` -> `cli`. Submodules are imported on first use so the command line starts fast.
"""

from __future__ import annotations

__version__ = "0.1.0"
