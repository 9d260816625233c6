"""A whole training run: data and model from the settings, a run folder, the callbacks, `Trainer.fit`,
then the test metrics and figures. `resume` continues an interrupted run in its own folder; `fit` is the
Python door for your own model and arrays (`mnistlab.fit`). In several processes (torchrun), every process
trains and only rank 0 writes the run folder (`distributed.py`)."""

from __future__ import annotations

import dataclasses
import errno
import os
import shlex
import sys
import time
from typing import Any, Sequence

import torch

from mnistlab.config import from_dict, merge, read_toml, to_toml
from mnistlab.data.arrays import save_arrays
from mnistlab.data.dataset import Dataset, load_dataset
from mnistlab.data.splits import DeviceSplits, split_dataset
from mnistlab.devices import release_free_memory, resolve_device
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.models.base import Classifier
from mnistlab.models.inference import batched_logits
from mnistlab.models.io import load_weights_into, read_model_meta
from mnistlab.models.registry import count_parameters, create_model, get_model_entry
from mnistlab.models.user import as_builder, is_reference, model_label, reference_of
from mnistlab.runs import RunFolder, best_checkpoint, figure_path, find_run_path
from mnistlab.settings import RESUMABLE_SETTINGS, USER_MODEL_SETTINGS, TrainConfig
from mnistlab.training import distributed
from mnistlab.training.callbacks import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    Progress,
    ReduceLROnPlateau,
    TensorBoard,
)
from mnistlab.training.trainer import Trainer


def build_config(config_file: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
                 base: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults <- the model's own training settings (see `register_model`; USER_MODEL_SETTINGS for your
    own) <- `base` (e.g. a recipe) <- TOML file <- `overrides` (flags)."""
    data = dict(base or {})
    if config_file:
        data = merge(data, read_toml(config_file))
    data = merge(data, overrides or {})
    if data.get("init_from") and "model" not in data:  # fine-tuning: the model is the one whose weights it starts from
        spec = read_model_meta(best_checkpoint(find_run_path(data["init_from"])))["model"]
        data = {**data, "model": spec["name"], "model_options": {**spec["options"], **data.get("model_options", {})}}
    model = data.get("model", TrainConfig.model)
    if isinstance(model, str):  # else from_dict names the wrong type
        data = merge(USER_MODEL_SETTINGS if is_reference(model) else get_model_entry(model).train_settings, data)
    return from_dict(TrainConfig, data)


def _callbacks(config: TrainConfig, run: RunFolder, progress: str, command: str,
               extra: Sequence[Callback]) -> list[Callback]:
    """The run's callbacks; in a process other than rank 0, only those that steer the training (and the
    caller's), which then decide alike in every process."""
    writer = distributed.is_writer()
    callbacks: list[Callback] = [History(run if writer else None), *[c for c in extra if not c.after_checkpoint]]
    if config.schedule == "plateau":  # before early stopping, whose word on the last epoch is then the last
        callbacks.append(ReduceLROnPlateau(config.plateau_monitor, config.plateau_factor, config.plateau_patience,
                                           config.min_lr))
    if config.early_stopping:
        callbacks.append(EarlyStopping(config.early_stopping_monitor, config.early_stopping, config.min_delta,
                                       restore_best_weights=config.restore_best))
    if writer:
        if config.tensorboard:
            callbacks.append(TensorBoard(run.path, command, to_toml(config)))
        callbacks.append(Progress(progress))
        callbacks.append(ModelCheckpoint(run, config.checkpoint_monitor))  # saves the states of those before it
    return callbacks + [c for c in extra if c.after_checkpoint]


def prepare_training(config: TrainConfig, dataset: Dataset | None = None, builder=None
                     ) -> tuple[Dataset, Classifier, DeviceSplits]:
    """The dataset (`dataset`, else the one the settings name), the seeded model (your own is built by
    `builder`, else by the code its reference names) and the splits on the device. Done before a run is
    started, so that an unknown name, a bad option or missing data fails at once and leaves no run folder."""
    device = resolve_device(config.device)
    if config.cuda_graph and device.type != "cuda":
        raise ConfigError(f"cuda_graph needs a CUDA device, and this run is on {device}; "
                          "set cuda_graph = false (--no-cuda-graph) or --device cuda")
    distributed.check_settings(config.batch_size, config.cuda_graph, config.sync_bn, device)
    distributed.join(device)
    dataset = dataset or load_dataset(config.dataset, config.data_dir)
    torch.manual_seed(config.seed)  # initial weights
    # training runs the code its settings name (the user named it there)
    model = create_model(config.model, num_classes=dataset.num_classes, image_shape=dataset.image_shape,
                         builder=builder, import_code=True, **config.model_options)
    data = split_dataset(dataset, config.validation, config.val_split, config.seed, config.subset, device)
    if config.last_batch == "drop" and len(data.train_x) < config.batch_size:
        raise ConfigError(f"last_batch = 'drop' leaves no batch: {len(data.train_x)} training images are fewer "
                          f"than batch_size {config.batch_size}; lower batch_size or use last_batch = 'mean'")
    if config.init_from:
        _start_from(model, config.init_from)  # its normalization too: the weights were learnt behind it
    else:
        model.normalize.fit(data.train_x)
    return dataset, model, data


def _start_from(model: Classifier, source: str) -> None:
    """Load the weights of a run's best checkpoint (or a checkpoint file) into `model`, which must be the
    same model: the same name (or code), options, classes and image shape."""
    try:
        load_weights_into(model, best_checkpoint(find_run_path(source)))
    except MnistlabError as e:
        raise ConfigError(f"init_from {source}: {e}; leave --model out to take the run's") from None


def train(config: TrainConfig, runs_dir: str | os.PathLike = "runs", name: str | None = None,
          progress: str = "auto", command: str | None = None, callbacks: Sequence[Callback] = (),
          dataset: Dataset | None = None, model: Any = None) -> RunFolder:
    """Train per `config` in a new run folder under `runs_dir`; returns the folder (see `RunFolder`).

    `dataset` (in memory, e.g. from arrays) replaces the one the settings name, and is saved in the run
    folder (`RunFolder.data_path`), which the settings then name; `model` (an nn.Module or a builder, see
    `models.user.as_builder`) builds your own model, whose reference `config.model` holds."""
    command = command or shlex.join(["mnistlab", *sys.argv[1:]])
    started = time.perf_counter()
    prepared = prepare_training(config, dataset, as_builder(model))
    prepare_seconds = time.perf_counter() - started
    run = None
    if distributed.is_writer():
        run = RunFolder.create(runs_dir, name or f"{prepared[0].name}-{model_label(config.model)}")
        if dataset is not None:
            config = dataclasses.replace(config, dataset=str(save_arrays(dataset, run.data_path).resolve()))
        run.write_start(to_toml(config), command, str(resolve_device(config.device)))
    run = RunFolder(distributed.broadcast_from_writer(run and str(run.path)))
    return _fit(config, run, prepared, progress, command, callbacks, resume=False, prepare_seconds=prepare_seconds)


def fit(model: Any = None, data: Any = None, *, validation_data: Any = None,
        validation_split: float | None = None, test_data: Any = None, class_names: Sequence[str] | None = None,
        config: str | os.PathLike | None = None, runs_dir: str | os.PathLike = "runs", name: str | None = None,
        progress: str = "auto", callbacks: Sequence[Callback] = (), **settings: Any) -> RunFolder:
    """Train `model` on `data` as `mnistlab train` does (same trainer, callbacks and run folder); returns the
    run. See `mnistlab.fit` for the arguments; None leaves the model or dataset to the settings' default."""
    settings = dict(settings)
    if "normalize" in settings:  # a model option, given where Keras users look for it
        settings["model_options"] = {**settings.get("model_options", {}), "normalize": settings.pop("normalize")}
    builder = None
    if isinstance(model, str):
        settings["model"] = model
    elif model is not None:
        builder = as_builder(model)
        settings["model"] = reference_of(model)
    dataset = None
    if isinstance(data, (tuple, list)):
        dataset = Dataset.from_arrays(data, validation_data, test_data, class_names)
    elif validation_data is not None or test_data is not None or class_names is not None:
        given = data.name if isinstance(data, Dataset) else str(data)
        raise ConfigError("validation_data, test_data and class_names go with arrays: data=(images, labels); "
                          f"the dataset {given!r} has its own")
    elif isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (str, os.PathLike)) or data is None:
        if data is not None:
            settings["dataset"] = str(data)
    else:
        raise ConfigError(f"data must be (images, labels) arrays, a dataset name, a folder or an .npz file; got "
                          f"{type(data).__name__}")
    if validation_data is not None:
        if validation_split is not None:
            raise ConfigError("give validation_data or validation_split, not both")
        settings["validation"] = "given"
    elif validation_split is not None:  # Keras's: the last fraction of the training arrays, before shuffling
        settings.update(validation="last", val_split=validation_split)
    if dataset is not None:
        settings["dataset"] = dataset.name
    train_config = build_config(config, settings)
    return train(train_config, runs_dir, name, progress, f"mnistlab.fit({train_config.model!r}, ...)", callbacks,
                 dataset, builder)


def resume(run_path: str | os.PathLike, progress: str = "auto", callbacks: Sequence[Callback] = (),
           changes: dict[str, Any] | None = None, model: Any = None) -> RunFolder:
    """Continue an interrupted or stopped run from its last checkpoint, in its own folder; with `changes`
    (only RESUMABLE_SETTINGS), on those settings: `{"epochs": N}` trains a run, finished or not, to N epochs
    (a schedule that depends on the length is recomputed for the new one). Your own model is rebuilt by the
    code its settings name, or by `model` (needed for a class defined in a notebook that is gone)."""
    run = RunFolder.open(run_path)
    state, status, writer = run.state(), run.status(), distributed.is_writer()
    changes = dict(changes or {})
    fixed = sorted(set(changes) - set(RESUMABLE_SETTINGS))
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} cannot change when a run is resumed (it goes on with the settings it "
                          f"began with; only {', '.join(RESUMABLE_SETTINGS)} can); start a new run from its weights "
                          f"instead: --init-from {run.path}")
    done = int(run.metrics().get("epochs") or len(run.history()))
    if state == "finished" and changes.get("epochs", 0) <= done:
        raise MnistlabError(f"{run.path} has already finished its {done} epochs; train it further with --resume "
                            f"{run.path} --epochs N (N above {done}), or train a new run")
    # another live process trains it; this process's own pid means one of its runs ended without a word (a full
    # disk kept it from recording that), so it may go on
    if writer and state == "running" and status.get("pid") != os.getpid():
        raise MnistlabError(f"{run.path} is still training (process {status.get('pid')} on {status.get('host')}); "
                            "stop it first, or wait for it to finish")
    config = from_dict(TrainConfig, merge(run.settings(), changes))
    if changes and writer:
        run.write_settings(to_toml(config))
    command = run.command()
    dataset = load_dataset(run.data_path) if run.data_path.is_file() else None  # the arrays it was given
    # a failure here (data gone, say) leaves the run resumable
    started = time.perf_counter()
    prepared = prepare_training(config, dataset, as_builder(model))
    prepare_seconds = time.perf_counter() - started
    if writer:
        run.set_state("running", resumed=time.time())
    return _fit(config, run, prepared, progress, command, callbacks, resume=True, prepare_seconds=prepare_seconds)


def _fit(config: TrainConfig, run: RunFolder, prepared: tuple[Dataset, Classifier, DeviceSplits], progress: str,
         command: str, callbacks: Sequence[Callback], resume: bool, prepare_seconds: float) -> RunFolder:
    try:
        if not distributed.is_writer():
            _fit_in_step(config, run, prepared, progress, command, callbacks, resume)
            return run
        return _fit_and_record(config, run, prepared, progress, command, callbacks, resume, prepare_seconds)
    finally:
        distributed.leave()


def _fit_in_step(config: TrainConfig, run: RunFolder, prepared: tuple[Dataset, Classifier, DeviceSplits],
                 progress: str, command: str, callbacks: Sequence[Callback], resume: bool) -> None:
    """A process other than rank 0: trains in step with it (from the run's last state on a resume), writes
    nothing."""
    dataset, model, data = prepared
    trainer = Trainer(model, config, data, _callbacks(config, run, progress, command, callbacks))
    if resume and run.last_state.exists():
        trainer.load_training_state(run.last_state)
    trainer.fit()


def _fit_and_record(config: TrainConfig, run: RunFolder, prepared: tuple[Dataset, Classifier, DeviceSplits],
                    progress: str, command: str, callbacks: Sequence[Callback], resume: bool,
                    prepare_seconds: float) -> RunFolder:
    """Train and record in the run folder; its run.json gets the seconds of each part of this session
    (`phases`: data and model, trainer, training, calibration, test, figures), what `bench/train_overhead.py`
    reads; "trainer" is the optimizer and the callbacks (the first torch.optim optimizer of a process imports
    torch._dynamo, about a second)."""
    started = time.perf_counter()
    dataset, model, data = prepared
    try:
        meta = {"dataset": dataset.name, "class_names": list(dataset.class_names), "run": run.name}
        trainer = Trainer(model, config, data, _callbacks(config, run, progress, command, callbacks), meta)
        trainer_seconds = time.perf_counter() - started
        if resume and run.last_state.exists():
            trainer.load_training_state(run.last_state)
            trainer.log(f"resuming {run.path} after epoch {trainer.epoch}")
        elif resume:  # stopped before its first epoch ended: nothing saved, so start over in the same folder
            trainer.log(f"resuming {run.path}: no epoch had finished, so it starts from the beginning")
        parameters = count_parameters(trainer.model)
        run.set_state("running", parameters=parameters)
        final = trainer.fit()
        history = _history(trainer)
        vals = [r["val_accuracy"] for r in history if r.get("val_accuracy") is not None]
        best_epoch = next((c.best_epoch for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        run.write_metrics({**final, "best_val_accuracy": max(vals) if vals else None, "best_epoch": best_epoch,
                           "parameters": parameters, "device": str(trainer.device), "dataset": dataset.name,
                           "model": config.model, "world_size": trainer.place.world_size})
        drawn = time.perf_counter()
        if config.figures:
            release_free_memory(trainer.device)  # what the test freed, before matplotlib's
            _write_figures(run, trainer, dataset)
        phases = {"data and model": prepare_seconds, "trainer": trainer_seconds,
                  "training": final["train_seconds"] - trainer.seconds_before,
                  "calibration": final.get("calibration_seconds", 0.0), "test": final.get("test_seconds", 0.0),
                  "figures": time.perf_counter() - drawn}
    except (KeyboardInterrupt, SystemExit) as stop:  # Ctrl-C, or told to exit (a sweep's scheduler stops a trial)
        _record_state(run, "interrupted", wall_seconds=_wall(run, started))
        if isinstance(stop, KeyboardInterrupt):
            saved = run.last_state.exists()
            print(f"interrupted ({'the last finished epoch is saved' if saved else 'before the first epoch ended'})"
                  f"; continue with: mnistlab train --resume {run.path}", file=sys.stderr)
        raise
    except BaseException as error:
        _record_state(run, "failed", error=str(error) or type(error).__name__, wall_seconds=_wall(run, started))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise MnistlabError(f"no space left on the disk that holds {run.path} ({error.strerror}); the checkpoints "
                                f"of finished epochs are intact: free some space, then continue with: mnistlab train "
                                f"--resume {run.path}") from None
        raise
    run.set_state("finished", wall_seconds=_wall(run, started), phases={k: round(v, 3) for k, v in phases.items()})
    return run


def _record_state(run: RunFolder, state: str, **info) -> None:
    """Record why a run ended, if the disk lets us: on a full disk it cannot, and the run then reads as
    stopped (its process gone), resumable all the same."""
    try:
        run.set_state(state, **info)
    except OSError:
        pass


def _history(trainer: Trainer) -> list[dict[str, float]]:
    return next(c for c in trainer.callbacks if isinstance(c, History)).rows


def _wall(run: RunFolder, started: float) -> float:
    """Wall time of this process plus that of earlier (interrupted) attempts."""
    return round(run.status().get("wall_seconds", 0.0) + time.perf_counter() - started, 2)


def _write_figures(run: RunFolder, trainer: Trainer, dataset: Dataset) -> None:
    """Curves, and the confusion matrix and worst mistakes of the tested model on the test set (on the
    validation split when the dataset has none, or the run is not to look at it: `config.test`)."""
    from mnistlab import plots
    from mnistlab.metrics import classification_metrics, write_metric_figures

    plots.training_curves({run.name: _history(trainer)}, figure_path(run.path, "curves"))
    data = trainer.data
    split, images, labels = (("test", dataset.test_images, dataset.test_labels)
                             if dataset.has_test and trainer.config.test else ("val", data.val_x, data.val_y))
    if images is None:
        return
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    logits = trainer.test_logits if split == "test" else None  # what the test printed, not a second pass
    if logits is None:
        model = trainer.eval_model.to(memory_format=torch.contiguous_format)
        logits = batched_logits(model, images, trainer.config.eval_batch_size)
    proba = torch.softmax(logits, 1).cpu().numpy()
    result = classification_metrics(proba, labels, dataset.class_names)
    images = images.cpu().numpy() if isinstance(images, torch.Tensor) else images
    write_metric_figures(result, proba, images, labels, dataset.class_names, run.path, f"({run.name}, {split})", split)
