"""The training loop: `fit()` runs `train_one_epoch()` and `evaluate()` and calls the callbacks.

Everything stays on the device: metrics accumulate in device tensors and are read once per epoch (or when
a progress bar redraws). Every epoch reseeds its random streams from (seed, epoch), so a resumed run
continues exactly where an uninterrupted one would be. In one of several processes (torchrun), the model is
wrapped in DistributedDataParallel, each process steps on its share of every batch, and the epoch's metrics
and the validation figures are summed over the processes, so every process logs, and decides, the same.
"""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.choices import HELD_OUT_VALIDATIONS
from mnistlab.data.splits import DeviceSplits
from mnistlab.devices import process_place, release_free_memory
from mnistlab.errors import MnistlabError
from mnistlab.models.base import Classifier
from mnistlab.models.calibration import fit_temperature, logits_ece
from mnistlab.models.inference import autocast_context, batched_logits, view_logits, views_for
from mnistlab.models.io import record_temperature, save_model
from mnistlab.settings import TrainConfig
from mnistlab.training.callbacks.base import Callback
from mnistlab.training.distributed import mean_loss_and_accuracy, share_of
from mnistlab.training.loader import DeviceBatches
from mnistlab.training.optim import build_optimizer, kernel_parameters, lr_factor


class TrainingDiverged(MnistlabError):
    """The loss became NaN or infinite."""


def training_autocast_dtype(precision: str, device: torch.device, uses_conv: bool) -> torch.dtype | None:
    """The autocast dtype of training steps (None: float32). "auto" is bf16 on GPUs, and for conv nets on
    CPUs with native bf16 (measured 1.5x there, same accuracy)."""
    if precision == "auto":
        cpu_bf16 = device.type == "cpu" and uses_conv and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        precision = "bf16" if device.type == "cuda" or cpu_bf16 else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


class RunningMetrics:
    """The epoch's losses, logits and labels so far, kept on the device; `read()` reduces them and is the only
    host sync. Each step's are copied into buffers made for the whole epoch before its first step: three
    copies and an append a step, since tiny models are bound by per-op overhead. Each step's own small
    tensors are not kept: a few hundred of them, alive until the epoch ends, would lie scattered in the memory
    the steps' activations free and keep glibc from reusing it for them (a 1-epoch `best` run in 4
    micro-batches crept up to 717 MB of resident memory that way, against 498 MB with nothing kept)."""

    def __init__(self, steps: int, images: int, classes: int, device: torch.device | str = "cpu"):
        """Room for `steps` steps of together at most `images` images, each with `classes` logits."""
        self.losses = torch.empty(steps, device=device)
        self.logits = torch.empty(images, classes, device=device)
        self.labels = torch.empty(images, dtype=torch.int64, device=device)
        self.sizes: list[int] = []
        self.seen = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        n, seen = len(y), self.seen
        self.losses[len(self.sizes)].copy_(loss.detach())
        self.logits[seen:seen + n].copy_(logits.detach())
        self.labels[seen:seen + n].copy_(y)
        self.sizes.append(n)
        self.seen += n

    def read(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, images) of the epoch so far, over every process when there are several."""
        if not self.seen:
            return 0.0, 0.0, 0
        losses = self.losses[:len(self.sizes)]
        loss_sum = losses @ torch.tensor(self.sizes, dtype=losses.dtype).to(losses.device, non_blocking=True)
        hits = (self.logits[:self.seen].argmax(1) == self.labels[:self.seen]).sum()
        return mean_loss_and_accuracy(loss_sum, hits, self.seen)

    def cross_entropy(self) -> float:
        """The plain cross-entropy of the epoch's steps so far (the loss without label smoothing, which a
        smoothed loss hides: 0.5 where this is 0.05), from the logits kept: no work in the steps."""
        if not self.seen:
            return 0.0
        ce_sum = F.cross_entropy(self.logits[:self.seen], self.labels[:self.seen], reduction="sum")
        return mean_loss_and_accuracy(ce_sum, torch.zeros((), device=ce_sum.device), self.seen)[0]


class Trainer:
    def __init__(self, model: Classifier, config: TrainConfig, data: DeviceSplits,
                 callbacks: Sequence[Callback] = (), model_meta: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config, self.data = config, data
        self.device = data.train_x.device
        self.place = process_place()
        self.model = model.to(self.device)
        self.uses_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        self.channels_last = config.channels_last and self.uses_conv
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.sync_bn and self.place.world_size > 1:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.forward = self.model
        if self.place.world_size > 1:  # gradients averaged over the processes as backward() computes them
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                   if self.device.type == "cuda" else None)
        if config.compile:
            # static shapes: an epoch's smaller last batch gets a graph of its own, not a slower dynamic one
            self.forward = torch.compile(self.forward, mode=config.compile_mode, dynamic=False)
        # CUDA graphs (reduce-overhead) overwrite a step's outputs when the next step replays the graph
        self.compiled_graphs = (config.compile and self.device.type == "cuda"
                                and config.compile_mode == "reduce-overhead")
        self.ema = None
        if config.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self.autocast_dtype = training_autocast_dtype(config.precision, self.device, self.uses_conv)
        # graphed steps read whole augmented epochs: per-batch augmentation would launch ~15 kernels a step
        self.batches = DeviceBatches(data.train_x, data.train_y, config.batch_size, config.augment,
                                     self.channels_last, drop_last=config.last_batch == "drop",
                                     augment_whole_epoch=config.cuda_graph,
                                     share=(self.place.rank, self.place.world_size))
        self.optimizer = build_optimizer(self.model, config, self.device)
        self.graphed = None
        if config.cuda_graph:
            from mnistlab.training.cuda_graph import GraphedSteps

            self.graphed = GraphedSteps(self)
        self.optimized = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.kernels = kernel_parameters(self.model) if config.l2 else []
        self.callbacks = list(callbacks)
        # saved with every checkpoint, so that a reloaded model's TTA matches this one's
        self.model_meta = {**(model_meta or {}), "tta_mirror": bool(config.augment.flip)}
        self.base_lr, self.lr_scale = config.lr, 1.0
        self.epoch = 0  # epochs completed
        self.seconds_before = 0.0  # training time of the earlier sessions of a resumed run
        self._fit_started = time.perf_counter()
        self.best_checkpoint: Path | None = None  # set by ModelCheckpoint; fit() tests this model
        self.test_logits: torch.Tensor | None = None  # the tested model's float32 logits (N, classes), for figures
        self.stop_training = False
        quiet = self.place.rank > 0  # rank 0 speaks for all
        self.log = log or (lambda message: None if quiet else print(message, file=sys.stderr, flush=True))
        if self.ema is not None:
            self._warn_if_ema_is_slow()

    def _warn_if_ema_is_slow(self) -> None:
        """The weight average starts from the first step's (nearly random) weights and keeps decay**steps of
        them: a decay too slow for the run validates and tests a model that is still mostly noise."""
        decay, steps = self.config.ema, len(self.batches)
        first, last = decay ** steps, decay ** (steps * self.config.epochs)
        if last > 0.01:
            suggested = 0.01 ** (1 / (steps * self.config.epochs))
            self.log(f"warning: ema {decay} averages over about {1 / (1 - decay):,.0f} steps, but this run makes "
                     f"{steps * self.config.epochs:,} ({self.config.epochs} epochs of {steps}): after the first "
                     f"epoch {first:.0%} of the average is still the initial weights, and {last:.0%} at the end; "
                     f"choose ema <= {suggested:.4f}, or train longer")

    @property
    def eval_model(self) -> Classifier:
        """What is validated, saved and tested: the weight average when config.ema is set, else the model."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    def _seed_epoch(self, epoch: int) -> None:
        seed = self.config.seed * 1_000_003 + epoch
        torch.manual_seed(seed)  # dropout and other global draws
        self.batches.generator.manual_seed(seed)  # permutation and augmentation

    def fit(self) -> dict[str, Any]:
        """Train from the epoch after `self.epoch` to config.epochs (or until a callback stops), then
        evaluate the best checkpoint (or the final model) on the test set, if there is one. Returns the
        final logs."""
        self._call("on_train_begin")
        self._fit_started = time.perf_counter()
        try:
            for epoch in range(self.epoch + 1, self.config.epochs + 1):
                self._seed_epoch(epoch)
                self._call("on_epoch_begin", epoch)
                logs = self.train_one_epoch(epoch)
                if self.data.val_x is not None:
                    logs["val_loss"], logs["val_accuracy"] = self.evaluate(self.data.val_x, self.data.val_y)
                if not math.isfinite(logs["loss"]):
                    raise TrainingDiverged(
                        f"the training loss became {logs['loss']} in epoch {epoch}; lower the learning rate "
                        f"(now {self.config.lr}) or set grad_clip; the checkpoints of earlier epochs are kept")
                self.epoch = epoch
                self._call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
            final = {"epochs": self.epoch, "train_seconds": self.train_seconds()}
            release_free_memory(self.device)  # what training freed, before the test's batches
            if self.best_checkpoint is not None:
                self._load_weights(self.best_checkpoint)
            if self.place.rank == 0 and self.calibrates:
                calibrating = time.perf_counter()
                final.update(self.calibrate())
                final["calibration_seconds"] = time.perf_counter() - calibrating
            # by rank 0 alone, which holds the best checkpoint (arrays given without a test set have none)
            if self.config.test and len(self.data.test_x) and self.place.rank == 0:
                tested = time.perf_counter()
                final.update(self.test())
                final["test_seconds"] = time.perf_counter() - tested
        except BaseException as error:
            self._call("on_exception", error)
            raise
        self._call("on_train_end", final)
        return final

    @property
    def calibrates(self) -> bool:
        """Whether fit ends by fitting a temperature: asked for, on a validation split held out from training
        and testing (never the test set)."""
        return (self.config.calibrate and self.config.validation in HELD_OUT_VALIDATIONS
                and self.data.val_x is not None and len(self.data.val_x) > 0)

    def calibrate(self) -> dict[str, float]:
        """Fit the tested model's temperature on the validation split (float32 logits, as it is tested), write
        it into the best checkpoint, and log the calibration error before and after."""
        model = self.eval_model
        model.temperature = 1.0
        logits = batched_logits(model, self.data.val_x, self.config.eval_batch_size, None, self.channels_last)
        temperature = fit_temperature(logits, self.data.val_y)
        before, after = logits_ece(logits, self.data.val_y), logits_ece(logits, self.data.val_y, temperature)
        model.temperature = temperature
        if self.best_checkpoint is not None:
            record_temperature(self.best_checkpoint, temperature)
        self.log(f"calibrated: logits divided by {temperature:.3f}; calibration error (ECE) on the validation "
                 f"split {before:.4f} -> {after:.4f}")
        return {"temperature": temperature, "val_ece_uncalibrated": before, "val_ece": after}

    def train_seconds(self) -> float:
        """Seconds of training so far, over every session of a resumed run."""
        return self.seconds_before + time.perf_counter() - self._fit_started

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        config, model = self.config, self.model
        model.train()
        steps = self.steps_per_epoch
        running = self.graphed.start_epoch() if self.graphed else RunningMetrics(
            steps, steps * self.batches.batch_size, self.model.num_classes, self.device)
        started = time.perf_counter()
        step0 = (epoch - 1) * steps
        # per-step Python is what bounds tiny models: only the callbacks that watch batches, lr set on change
        batch_callbacks = [c for c in self.callbacks if type(c).on_batch_end is not Callback.on_batch_end]
        lr = None
        for step, (x, y) in enumerate(self.batches):
            step_lr = self.base_lr * self.lr_scale * lr_factor(step0 + step, steps, config)
            if step_lr != lr:
                lr = step_lr
                if self.graphed:
                    self.graphed.set_lr(lr)
                else:
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
            if self.graphed:
                self.graphed.step(x, y)
            else:
                loss, scores = self.training_step(x, y)
                running.add(loss, scores, y)
            for callback in batch_callbacks:
                callback.on_batch_end(self, step, running)
        loss, accuracy, seen = running.read()  # the epoch's one host sync
        seconds = time.perf_counter() - started
        logs = {"epoch": epoch, "loss": loss, "accuracy": accuracy, "lr": lr, "seconds": seconds,
                "samples_per_s": seen / seconds}
        if config.label_smoothing:  # the loss trained on is smoothed; printed alone it puzzles (0.5 at 99%)
            logs["cross_entropy"] = running.cross_entropy()
        return logs

    def training_step(self, x: torch.Tensor, y: torch.Tensor, autocast_cache: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; returns (mean loss, float32 logits), both left on the device. With
        `config.micro_batches` the batch goes through forward and backward in parts whose gradients add up to
        the batch's, so that only one part's activations are held at a time."""
        config = self.config
        for parameter in self.optimized:  # optimizer.zero_grad's profiler scope costs 8 us a step
            parameter.grad = None
        if config.micro_batches > 1 and len(y) > 1:
            loss, scores = self._backward_in_parts(x, y, autocast_cache)
        else:
            loss, scores = self._backward(x, y, len(y), autocast_cache, with_l2=True)
        if config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss, scores

    def _backward(self, x: torch.Tensor, y: torch.Tensor, batch_images: int, autocast_cache: bool,
                  with_l2: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of `x`, all or part of a batch of `batch_images`: its gradient, weighted by its
        share of the batch, is added to the parameters'. Returns (mean loss over x, float32 logits)."""
        config = self.config
        if self.compiled_graphs:  # a new forward: its graph may overwrite the last one's outputs
            torch.compiler.cudagraph_mark_step_begin()
        with autocast_context(self.device, self.autocast_dtype, autocast_cache):
            logits = self.forward(x)
        scores = logits.float()  # a copy under autocast, kept until the batch's last part has run
        if self.compiled_graphs and scores is logits:
            scores = scores.clone()
        loss = F.cross_entropy(scores, y, label_smoothing=config.label_smoothing)
        total = loss * (self._loss_weight(batch_images) * len(y) / batch_images)
        if with_l2 and self.kernels:
            total = total + config.l2 * sum(w.square().sum() for w in self.kernels)
        total.backward()
        return loss, scores

    def _backward_in_parts(self, x: torch.Tensor, y: torch.Tensor, autocast_cache: bool
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """`_backward` of the batch in `config.micro_batches` parts (batch norm normalizes over each part and
        updates its running statistics once per part). Returns the batch's mean loss and its logits."""
        count = min(self.config.micro_batches, len(y))
        parts = list(zip(x.tensor_split(count), y.tensor_split(count)))
        loss_sums, scores = [], []
        for i, (x_part, y_part) in enumerate(parts):
            last = i == len(parts) - 1
            # several processes: the gradients are averaged over them once, in the last part's backward
            syncing = last or not hasattr(self.forward, "no_sync")
            with contextlib.nullcontext() if syncing else self.forward.no_sync():
                loss, part_scores = self._backward(x_part, y_part, len(y), autocast_cache, with_l2=last)
            loss_sums.append(loss.detach() * len(y_part))
            scores.append(part_scores)
        return torch.stack(loss_sums).sum() / len(y), torch.cat(scores)

    def _loss_weight(self, images: int) -> float:
        """What a step's mean loss over its `images` is multiplied by, so that the gradient (averaged over the
        processes by DDP) is that of one process's step on the whole batch: 1 for full batches; for the
        epoch's last, smaller one, the share of it this process holds, and with last_batch "scaled" also
        the fraction of a full batch it is."""
        world, full = self.place.world_size, self.config.batch_size
        if images * world == full:
            return 1.0
        last = self.batches.last_batch_size
        if self.config.last_batch == "scaled":
            return images * world / full
        return images * world / last

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of the model on raw images (the validation split after each
        epoch), in the training precision, in large batches without autograd. With several processes each
        computes its share and the sums are added up, so every process returns the same figures."""
        images, labels = share_of(images), share_of(labels)
        logits = batched_logits(self.eval_model, images, self.config.eval_batch_size, self.autocast_dtype,
                                self.channels_last)
        loss, accuracy, _ = mean_loss_and_accuracy(F.cross_entropy(logits, labels, reduction="sum"),
                                                   (logits.argmax(1) == labels).sum(), len(labels))
        return loss, accuracy

    def tested_view_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Float32 logits (V, N, classes) of the model on raw images, in each view its test looks at: the
        image itself first, then, with `config.tta`, the other test-time views."""
        views = views_for(self.config.tta, self.model_meta["tta_mirror"])
        return view_logits(self.eval_model, images, self.config.eval_batch_size, None, self.channels_last, views)

    def test(self) -> dict[str, float]:
        """The tested model on the test set, in float32 (what the saved model gives wherever it is loaded):
        loss, accuracy and calibration error, and with `config.tta` loss and accuracy over the test-time
        views, all from one pass (`tested_view_logits`). Keeps the plain logits in `test_logits`, from which
        the run's figures are drawn instead of a second pass."""
        logits = self.tested_view_logits(self.data.test_x)
        labels = self.data.test_y
        self.test_logits = logits[0]
        answers = {"": logits[0], "_tta": logits.mean(0)} if self.config.tta else {"": logits[0]}
        results = {}
        for suffix, answer in answers.items():
            results[f"test_loss{suffix}"] = F.cross_entropy(answer, labels).item()
            results[f"test_accuracy{suffix}"] = (answer.argmax(1) == labels).float().mean().item()
        results["test_ece"] = logits_ece(self.test_logits, labels)
        return results

    # -- checkpoints -------------------------------------------------------------------------------------
    def save_model(self, path: Path, **meta: Any) -> Path:
        return save_model(self.eval_model, path, **self.model_meta, **meta)

    def _load_weights(self, path: Path) -> None:
        from safetensors.torch import load_file

        self.eval_model.load_state_dict(load_file(Path(path).with_suffix(".safetensors"), device=str(self.device)))

    def save_training_state(self, path: Path) -> None:
        """Everything a resume needs, loadable with torch.load(weights_only=True)."""
        from mnistlab._io import atomic_write

        state = {
            "epoch": self.epoch,
            "lr_scale": self.lr_scale,
            "train_seconds": self.train_seconds(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "callbacks": {key: c.state_dict() for key, c in self._callback_keys()},
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        with atomic_write(path) as f:
            torch.save(state, f)

    def load_training_state(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except FileNotFoundError:
            raise MnistlabError(f"{path}: no saved training state; the run cannot be resumed") from None
        except Exception as e:  # a truncated or foreign file, or a pickle of other objects (which never runs)
            reason = str(e).splitlines()[0] if not isinstance(e, pickle.UnpicklingError) else \
                "it holds objects other than tensors and numbers, which mnistlab never unpickles"
            raise MnistlabError(f"{path}: unreadable training state ({reason}); the run cannot be resumed from it, "
                                "train it again") from None
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            if "ema" not in state:
                raise MnistlabError(f"{path}: this run was trained without ema; resume it without --ema")
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.lr_scale = state["epoch"], state["lr_scale"]
        self.seconds_before = float(state.get("train_seconds", 0.0))  # absent from older states
        for key, callback in self._callback_keys():
            if key in state["callbacks"]:
                callback.load_state_dict(state["callbacks"][key])

    def _callback_keys(self):
        """(key, callback) with keys by class name and occurrence, stable when other callbacks come and go."""
        seen: dict[str, int] = {}
        for callback in self.callbacks:
            name = type(callback).__name__
            seen[name] = seen.get(name, 0) + 1
            yield (name if seen[name] == 1 else f"{name}#{seen[name]}"), callback
