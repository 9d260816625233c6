"""The settings of a training run: one typed structure with defaults, units and help, free of torch.

Each field of `TrainConfig` carries its own help text, choices and command-line group (`setting(...)`), so
a new setting is one edit here: `mnistlab train` grows a flag for it, `--set`/TOML files accept it, and
its choices are checked. A TOML file with the same keys (`--config`, or a recipe) overrides the defaults,
and flags override the file. The defaults are mnistlab's own recipe: about 99.5% MNIST test accuracy in
5 epochs on 2 CPU cores. This module imports neither torch nor numpy, so `mnistlab --help` stays instant.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mnistlab.choices import (
    COMPILE_MODES,
    LAST_BATCHES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    TRAINING_METRICS,
    VALIDATION_METRICS,
    VALIDATIONS,
)
from mnistlab.errors import ConfigError

CLI_GROUPS = ("what", "optimization", "validation and callbacks", "engine")
# your own model's defaults where mnistlab's (SGD at lr 0.8, tuned for the zoo's batch-norm nets) would not
# suit a network of unknown make; below a recipe, a config file and flags, which all still override them
# (chosen on validation data: a plain two-conv CNN, 4 epochs of 5,000 MNIST training images, validated on 1,000
# others: 95.8% against 90.5% with lr 0.001 and batches of 256, 95.4% for Keras's constant 0.001 at 128)
USER_MODEL_SETTINGS = {"optimizer": "adam", "lr": 0.003, "batch_size": 128, "weight_decay": 0.0}
# what may change when a run is resumed (`--resume RUN --epochs N` trains it further); the rest would make it
# another run: start one from its weights with init_from
RESUMABLE_SETTINGS = ("epochs", "early_stopping", "min_delta", "tensorboard", "calibrate", "tta", "test", "figures",
                      "eval_batch_size", "device", "data_dir")


def setting(default: Any = dataclasses.MISSING, *, help: str, group: str, choices: tuple[str, ...] = (),
            metavar: str | None = None, flags: tuple[str, ...] = (), default_factory: Any = dataclasses.MISSING):
    """A settings field with what the command line shows of it: `help`, `group` (one of CLI_GROUPS), the
    allowed `choices` (checked when settings are built), and `flags` where they differ from --field-name."""
    assert group in CLI_GROUPS, group
    metadata = {"help": help, "group": group, "choices": choices, "metavar": metavar, "flags": flags}
    return field(default=default, default_factory=default_factory, metadata=metadata)


@dataclass
class AugmentConfig:
    """Each value is a range that every sample draws its own transform from; 0 turns it off."""

    rotate: float = 0.0  # degrees: rotation drawn from U(-rotate, rotate)
    zoom: float = 0.0  # scale drawn from U(1 - zoom, 1 + zoom); above 1 enlarges the content
    shear: float = 0.0  # horizontal shear factor drawn from U(-shear, shear) (x' = x + shear * y)
    shift: float = 0.0  # translation, a fraction of the image size per axis, from U(-shift, shift)
    erase: float = 0.0  # probability of blanking one random rectangle (2-20% of the image; random erasing)
    flip: float = 0.0  # probability of a left-right mirror (for clothes, not digits)

    def __post_init__(self):
        for name in ("rotate", "zoom", "shear", "shift", "erase", "flip"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment {name} must be >= 0, got {getattr(self, name)}")
        if self.zoom >= 1 or self.erase > 1 or self.shift >= 1 or self.flip > 1:
            raise ConfigError("augment zoom and shift must be below 1, erase and flip at most 1")

    @property
    def active(self) -> bool:
        return any((self.rotate, self.zoom, self.shear, self.shift, self.erase, self.flip))

    @property
    def affine(self) -> bool:
        return any((self.rotate, self.zoom, self.shear, self.shift))


def parse_augment(spec: str | dict | AugmentConfig | None) -> AugmentConfig:
    """'rotate=10,zoom=0.1,shear=0.3' (or a dict) -> AugmentConfig; unknown names are errors."""
    if isinstance(spec, AugmentConfig):
        return spec
    from mnistlab.config import from_dict, parse_key_values

    values = parse_key_values(spec, "--augment") if isinstance(spec, str) else dict(spec or {})
    return from_dict(AugmentConfig, values, "augment.")


@dataclass
class TrainConfig:
    # what to train
    dataset: str = setting("mnist", group="what", help="dataset name or folder of IDX files (default mnist)")
    data_dir: str | None = setting(None, group="what",
                                   help="where datasets live (default: $MNISTLAB_DATA, else ~/.cache/mnistlab)")
    model: str = setting("fastnet-wide", group="what",
                         help="zoo model name (`mnistlab models`), or your own: path/to/file.py:function or "
                              "package.module:function, returning an nn.Module (its settings default to adam, "
                              "lr 0.003, batch 128)")
    model_options: dict[str, Any] = setting(
        default_factory=dict, group="what", flags=("--option", "-o"), metavar="KEY=VALUE",
        help="a model option, e.g. -o hidden=[128,64] -o dropout=0.2 (repeatable)")
    subset: int = setting(0, group="what", help="train on the first N training images only (0: all); for quick checks")
    init_from: str | None = setting(
        None, group="what", metavar="RUN",
        help="start from the weights (and normalization) of this run's best checkpoint, or of a checkpoint file; "
             "the model is that run's unless --model says otherwise, and must have the same shape")
    # how long
    epochs: int = setting(5, group="optimization", help="epochs to train (default 5)")
    batch_size: int = setting(256, group="optimization", help="images per step (default 256)")
    last_batch: str = setting(
        "mean", group="optimization", choices=LAST_BATCHES,
        help="the epoch's last, smaller batch: mean (a step like any other, as Keras and PyTorch take it), "
             "scaled (its loss summed over batch_size, a smaller step, as Gluon's trainer.step), drop (skipped)")
    # optimizer
    optimizer: str = setting("sgd", group="optimization", choices=OPTIMIZERS, help="the optimizer (default sgd)")
    lr: float = setting(0.8, group="optimization", help="(peak) learning rate")
    momentum: float = setting(0.9, group="optimization", help="momentum of sgd and rmsprop")
    nesterov: bool = setting(True, group="optimization", help="Nesterov momentum (sgd)")
    weight_decay: float = setting(
        5e-4, group="optimization",
        help="the optimizer's weight decay on kernels (decoupled for adamw, coupled otherwise)")
    l2: float = setting(0.0, group="optimization",
                        help="Keras-style L2 penalty on kernels, l2 * sum(kernel ** 2), added to the loss")
    # learning-rate schedule, a function of the step
    schedule: str = setting("onecycle", group="optimization", choices=SCHEDULES,
                            help="learning-rate schedule (default onecycle)")
    warmup: float = setting(0.5, group="optimization", help="epochs of linear warm-up from 0 (cosine, onecycle)")
    final_lr_fraction: float = setting(0.0, group="optimization", help="cosine and onecycle end at lr * this")
    step_epochs: int = setting(10, group="optimization", help="step schedule: multiply by step_gamma every N epochs")
    step_gamma: float = setting(0.1, group="optimization", help="step schedule: the factor")
    plateau_factor: float = setting(
        0.1, group="optimization", help="plateau schedule (ReduceLROnPlateau): multiply the lr by this ...")
    plateau_patience: int = setting(
        5, group="optimization", help="... after this many epochs without improvement of plateau_monitor")
    plateau_monitor: str = setting("val_loss", group="optimization", help="the metric the plateau schedule watches")
    min_lr: float = setting(0.0, group="optimization", help="the plateau schedule's lowest learning rate")
    # loss and regularization
    label_smoothing: float = setting(0.1, group="optimization", help="label smoothing of the loss (0: off)")
    grad_clip: float = setting(0.0, group="optimization", help="clip the gradient norm to this (0: off)")
    ema: float = setting(
        0.0, group="optimization", metavar="DECAY",
        help="validate, save and test a moving average of the weights (and BN statistics), updated every step "
             "with this decay, e.g. 0.999 (0: off)")
    augment: AugmentConfig = setting(default_factory=AugmentConfig, group="optimization", metavar="SPEC",
                                     help="e.g. rotate=10,zoom=0.1,shear=0.3,shift=0.1,erase=0.5,flip=0.5, merged "
                                          "key by key onto the recipe's or model's (the default model trains with "
                                          "rotate=10,zoom=0.1,shift=0.08); none: no augmentation")
    # validation and callbacks
    validation: str = setting(
        "split", group="validation and callbacks", choices=VALIDATIONS,
        help="split: a seeded random val_split of train held out (default) | last: the last val_split of "
             "train, as Keras's validation_split | given: the dataset's own validation split (Keras's "
             "validation_data; x_val in an .npz) | test: the test set | none")
    val_split: float = setting(0.1, group="validation and callbacks", help="fraction of train held out (default 0.1)")
    early_stopping: int = setting(
        0, group="validation and callbacks", metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement of early_stopping_monitor (0: off)")
    early_stopping_monitor: str = setting("val_loss", group="validation and callbacks",
                                          help="the metric early stopping watches (default val_loss)")
    min_delta: float = setting(0.0, group="validation and callbacks",
                               help="the smallest change early stopping counts as an improvement")
    restore_best: bool = setting(True, group="validation and callbacks",
                                 help="early stopping restores the best epoch's weights")
    checkpoint_monitor: str = setting(
        "val_accuracy", group="validation and callbacks",
        help="the best checkpoint maximizes (accuracy) or minimizes (loss) this metric; last: the last epoch's "
             "model is the one saved and tested, as in a Keras script without a checkpoint callback")
    calibrate: bool = setting(
        True, group="validation and callbacks",
        help="after training, fit the temperature the logits are divided by on the held-out validation split "
             "(split, last or given; never the test set), so that confidences match accuracy; saved with the model")
    tensorboard: bool = setting(True, group="validation and callbacks", help="write TensorBoard event files")
    tta: bool = setting(True, group="validation and callbacks",
                        help="also test with test-time augmentation: logits averaged over 1-pixel shifts (and "
                             "mirrors when augment flips)")
    figures: bool = setting(True, group="validation and callbacks",
                            help="draw the curves, confusion matrix and mistakes into the run folder at the end "
                                 "(a sweep's trials do not: a few seconds each; `mnistlab evaluate` draws them)")
    test: bool = setting(True, group="validation and callbacks",
                         help="test the best model on the test set at the end (a sweep's trials do not: they "
                              "choose on validation data, and the best is tested once)")
    # engine
    seed: int = setting(0, group="engine", help="seed of the weights, the split, the order and the augmentation")
    device: str = setting("auto", group="engine", help="auto (default), cpu, cuda, cuda:N")
    precision: str = setting(
        "auto", group="engine", choices=PRECISIONS,
        help="auto (bf16 on CUDA, and for conv nets on CPUs with native bf16) | fp32 | bf16")
    channels_last: bool = setting(True, group="engine", help="conv nets in channels_last memory format")
    compile: bool = setting(False, group="engine", help="torch.compile the model (slower start, faster steps on GPU)")
    compile_mode: str = setting("default", group="engine", choices=COMPILE_MODES,
                                help="with compile: reduce-overhead replays each step as CUDA graphs (GPU)")
    cuda_graph: bool = setting(
        False, group="engine",
        help="replay each whole training step (forward, backward, optimizer) as one CUDA graph: on a GPU, small "
             "nets are bound by kernel launches, not arithmetic (not with compile or ema)")
    # 500, not 2,000: on 2 CPU cores both lighter and faster (keras-cnn's peak 954 -> 597 MB and its test
    # 1.5 -> 1.1 s; the defaults' 719 -> 646 MB and 3.3 -> 1.3 s with TTA; bench/train_overhead.py, AMD EPYC)
    # 128, not 500: the float32 test of a conv net after bf16 training raised the process's peak memory by
    # about 100 MB at 500 (keras-cnn, allconv) and at 256 now and then by 250-450 MB (the `best` ResNet), and
    # was no faster on a CPU
    eval_batch_size: int = setting(128, group="engine", help="images per batch when validating and testing")
    micro_batches: int = setting(
        1, group="engine",
        help="run each batch through forward and backward in this many parts, one step per batch: the same "
             "gradient with a fraction of the activation memory (batch norm then normalizes over each part)")
    sync_bn: bool = setting(False, group="engine",
                            help="in several processes (torchrun, --nproc): batch norm over the whole global batch "
                                 "instead of each process's share (GPUs only)")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ConfigError(f"{f.name} must be one of {', '.join(allowed)}, got {getattr(self, f.name)!r} "
                                  "(check the flags or the config file)")
        checks = [
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
            (self.micro_batches >= 1, "micro_batches must be at least 1"),
            (not (self.cuda_graph and self.micro_batches > 1),
             "cuda_graph replays each whole step as one graph, which does not split batches: add --no-cuda-graph, "
             "or leave micro_batches at 1"),
            (not (self.cuda_graph and (self.compile or self.ema)),
             "cuda_graph (whole steps as CUDA graphs; the record recipes' [cuda] tables turn it on) does not work "
             "with compile or ema: add --no-cuda-graph, or leave compile and ema off"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{message} (check the flags or the config file)")
        self._check_monitors()

    def _check_monitors(self) -> None:
        """A monitor must be a metric the run logs: a typo would silently turn early stopping or the plateau
        schedule off. The best checkpoint may watch a validation metric of a run without validation (the
        last epoch's model is then the best)."""
        logged = TRAINING_METRICS + (VALIDATION_METRICS if self.validation != "none" else ())
        watched = [("checkpoint_monitor", TRAINING_METRICS + VALIDATION_METRICS + ("last",))]
        if self.early_stopping:
            watched.append(("early_stopping_monitor", logged))
        if self.schedule == "plateau":
            watched.append(("plateau_monitor", logged))
        for name, allowed in watched:
            if getattr(self, name) not in allowed:
                why = " (this run has no validation)" if getattr(self, name) in VALIDATION_METRICS else ""
                raise ConfigError(f"{name} {getattr(self, name)!r} is not a metric this run logs{why}; choose one "
                                  f"of {', '.join(allowed)}")
