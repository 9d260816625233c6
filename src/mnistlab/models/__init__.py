"""Models: the registry of networks by name, their shared input/normalization, inference, summaries and
checkpoints. Importing the package registers the zoo's models (`zoo.py`)."""

from mnistlab.models import zoo  # noqa: F401  (registers the zoo's models)
from mnistlab.models.base import Classifier, Normalize, as_image_batch
from mnistlab.models.registry import count_parameters, create_model, get_model_entry, list_models, register_model

__all__ = ["Classifier", "Normalize", "as_image_batch", "count_parameters", "create_model", "get_model_entry",
           "list_models", "register_model"]
