"""Models: the registry of networks by name, their shared input/normalization, and summaries."""

from mnistlab.models.base import Classifier, Normalize, as_image_batch
from mnistlab.models.registry import count_parameters, create_model, get_model_entry, list_models, register_model

__all__ = ["Classifier", "Normalize", "as_image_batch", "count_parameters", "create_model", "get_model_entry",
           "list_models", "register_model"]
