"""The settings of a training run: one typed structure with defaults, units in the comments.

A TOML file with the same keys (`--config`, or a recipe) overrides the defaults, and flags override the file.
The defaults are mnistlab's own recipe: about 99.5% MNIST test accuracy in about 25 s on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mnistlab.choices import COMPILE_MODES, LAST_BATCHES, OPTIMIZERS, PRECISIONS, SCHEDULES, VALIDATIONS
from mnistlab.data.augment import AugmentConfig
from mnistlab.errors import ConfigError


@dataclass
class TrainConfig:
    # what to train
    dataset: str = "mnist"  # registered name or folder of IDX files
    data_dir: str | None = None  # where datasets live (default: $MNISTLAB_DATA, else ~/.cache/mnistlab)
    model: str = "fastnet-wide"  # registered model name (`mnistlab models`)
    model_options: dict[str, Any] = field(default_factory=dict)  # the model builder's keyword options
    subset: int = 0  # train on this many training samples only (0: all); for quick checks
    # how long
    epochs: int = 5
    batch_size: int = 256
    # an epoch's last, smaller batch: mean (a step like any other, as Keras and PyTorch take it) | scaled (its
    # loss summed over batch_size, a smaller step, as MXNet Gluon's trainer.step(batch_size)) | drop (skipped)
    last_batch: str = "mean"
    # optimizer
    optimizer: str = "sgd"  # sgd | adam | adamw | rmsprop
    lr: float = 0.8  # peak learning rate
    momentum: float = 0.9  # sgd and rmsprop
    nesterov: bool = True  # sgd
    weight_decay: float = 5e-4  # the optimizer's decay on kernels (decoupled for adamw, coupled otherwise)
    l2: float = 0.0  # Keras-style penalty l2 * sum(kernel ** 2), added to the loss
    # learning-rate schedule, a function of the step
    schedule: str = "onecycle"  # constant | step | cosine | onecycle | plateau
    warmup: float = 0.5  # epochs of linear warm-up from 0 (cosine, onecycle)
    final_lr_fraction: float = 0.0  # cosine and onecycle end at lr * this
    step_epochs: int = 10  # step: multiply by step_gamma every step_epochs
    step_gamma: float = 0.1
    plateau_factor: float = 0.1  # plateau (ReduceLROnPlateau): multiply the lr by this ...
    plateau_patience: int = 5  # ... after this many epochs without improvement of plateau_monitor
    plateau_monitor: str = "val_loss"
    min_lr: float = 0.0
    # loss and regularization
    label_smoothing: float = 0.1
    grad_clip: float = 0.0  # clip the gradient norm to this (0: off)
    # an exponential moving average of the weights (and BN statistics), updated every step with this decay
    # (0: off); validation, checkpoints and the test use the average instead of the raw weights
    ema: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # validation and callbacks
    # split: a seeded random val_split of train held out | last: the last val_split of train, as Keras's
    # validation_split does | test: the test set | none
    validation: str = "split"
    val_split: float = 0.1
    early_stopping: int = 0  # patience in epochs (0: off)
    early_stopping_monitor: str = "val_loss"
    min_delta: float = 0.0
    restore_best: bool = True  # early stopping restores the best weights
    checkpoint_monitor: str = "val_accuracy"  # the best checkpoint maximizes (accuracy) or minimizes (loss) this
    tensorboard: bool = True
    tta: bool = True  # also test with TTA: logits averaged over 1-pixel shifts (and mirrors if augment.flip)
    # engine
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, and for conv nets on CPUs with native bf16) | fp32 | bf16
    channels_last: bool = True  # conv nets in channels_last memory format
    compile: bool = False  # torch.compile the model (slower start, faster steps on GPU)
    compile_mode: str = "default"  # default | reduce-overhead (CUDA graphs) | max-autotune | ...
    # replay each whole training step (forward, backward, optimizer) as one CUDA graph: on a GPU, small nets
    # are bound by kernel launches, not arithmetic (not with compile or ema)
    cuda_graph: bool = False
    eval_batch_size: int = 2000

    def __post_init__(self):
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
            (self.validation in VALIDATIONS, f"validation must be one of {', '.join(VALIDATIONS)}"),
            (self.last_batch in LAST_BATCHES, f"last_batch must be one of {', '.join(LAST_BATCHES)}"),
            (self.compile_mode in COMPILE_MODES, f"compile_mode must be one of {', '.join(COMPILE_MODES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.lr > 0, "lr must be positive"),
            (0 < self.val_split < 1, "val_split must be between 0 and 1"),
            (0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
            (0 <= self.ema < 1, "ema (a decay) must be in [0, 1)"),
            (self.weight_decay >= 0 and self.l2 >= 0, "weight_decay and l2 must be >= 0"),
            (0 <= self.warmup <= self.epochs, "warmup must be between 0 and epochs"),
            (0 < self.plateau_factor < 1, "plateau_factor must be between 0 and 1"),
            (self.subset >= 0 and self.early_stopping >= 0, "subset and early_stopping must be >= 0"),
            (not (self.cuda_graph and (self.compile or self.ema)),
             "cuda_graph (whole steps as CUDA graphs; the record recipes' [cuda] tables turn it on) does not work "
             "with compile or ema: add --no-cuda-graph, or leave compile and ema off"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message} (check the flags or the config file)")
