"""The names that settings and commands accept, kept in one module that does not import torch.

The settings and the exporter check values against these; the CLI offers them as argparse choices, and
because this module is torch-free, `mnistlab --help` stays instant.
"""

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
VALIDATIONS = ("split", "last", "given", "test", "none")
# the validations whose images are held out from both training and testing: a temperature may be fitted on them
HELD_OUT_VALIDATIONS = ("split", "last", "given")
LAST_BATCHES = ("mean", "scaled", "drop")  # the epoch's last, smaller batch: its mean, scaled by size, or skipped
PRECISIONS = ("auto", "fp32", "bf16")
# what a training run logs each epoch that callbacks can watch: validation metrics only when it validates
TRAINING_METRICS = ("loss", "accuracy")
VALIDATION_METRICS = ("val_loss", "val_accuracy")
# torch.compile modes; reduce-overhead replays the steps as CUDA graphs (on GPUs: far less launch overhead)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PROGRESS_MODES = ("auto", "bar", "notebook", "plain", "quiet")
# format: file extension (pt2: a torch.export program, which torch recommends over TorchScript)
EXPORT_FORMATS = {"onnx": "onnx", "pt2": "pt2", "torchscript": "pt", "safetensors": "safetensors"}
