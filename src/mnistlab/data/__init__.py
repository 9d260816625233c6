"""Data: the IDX format, the dataset registry and downloads, the user's own files (`inputs.py`), the seeded
validation split (`splits.py`) and, for training, batch augmentation (`augment.py`)."""

from mnistlab.data.dataset import Dataset, describe_dataset, load_dataset
from mnistlab.data.idx import load_idx, load_idx_images, load_idx_labels
from mnistlab.data.registry import DATASETS, DatasetSpec, get_dataset_spec, resolve_data_root

__all__ = [
    "DATASETS", "Dataset", "DatasetSpec", "describe_dataset", "get_dataset_spec", "load_dataset",
    "load_idx", "load_idx_images", "load_idx_labels", "resolve_data_root",
]
