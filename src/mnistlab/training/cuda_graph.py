"""Whole training steps replayed as CUDA graphs: forward, loss, backward and optimizer step in one launch.

Small nets on a GPU are bound by launching kernels from Python, not by arithmetic: on an H100, fastnet's
eager step costs about 3.4 ms whatever the batch size, for well under a millisecond of GPU work. A graph of
the whole step, captured once per batch size, replays those ~100 kernels for a few microseconds of host
time. Before each replay the batch and the learning rate are copied into the graph's static tensors; the
loss and the hit count accumulate on the device and are read once an epoch, as in the eager loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from mnistlab.training.trainer import Trainer


class GraphedSteps:
    """Runs the trainer's `training_step` eagerly for the first few steps of each batch size (on a side
    stream, as capture requires: lazy initializations and the optimizer's state happen there), then
    captures it once and replays it. These warm-up steps are real training steps, not extra ones."""

    WARMUP_STEPS = 3

    def __init__(self, trainer: Trainer):
        config = trainer.config  # prepare_training and TrainConfig have checked the device, compile and ema
        self.trainer = trainer
        self.lr = torch.tensor(config.lr, dtype=torch.float32, device=trainer.device)  # read inside the graph
        self.loss_sum = torch.zeros((), device=trainer.device)
        self.hits = torch.zeros((), dtype=torch.int64, device=trainer.device)
        self.cross_entropy_sum = torch.zeros((), device=trainer.device)  # without label smoothing
        self.seen = 0
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self.eager_steps: dict[int, int] = {}
        self.side_stream = torch.cuda.Stream(trainer.device)

    def start_epoch(self) -> GraphedSteps:
        """Zero the epoch's sums; point the optimizer at the graph's learning rate (a resumed optimizer state
        brings its own)."""
        for group in self.trainer.optimizer.param_groups:
            if group["lr"] is not self.lr:
                group["lr"] = self.lr
        self.loss_sum.zero_()
        self.hits.zero_()
        self.cross_entropy_sum.zero_()
        self.seen = 0
        return self

    def set_lr(self, lr: float) -> None:
        self.lr.fill_(lr)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        n = len(y)
        self.seen += n
        if n in self.graphs:
            graph, static_x, static_y = self.graphs[n]
            static_x.copy_(x)
            static_y.copy_(y)
            graph.replay()
        elif self.eager_steps.get(n, 0) < self.WARMUP_STEPS:
            self.eager_steps[n] = self.eager_steps.get(n, 0) + 1
            self.side_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side_stream):
                self._step_and_sum(x, y)
            torch.cuda.current_stream().wait_stream(self.side_stream)
        else:
            static_x, static_y = x.clone(), y.clone()  # clone keeps channels_last
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step_and_sum(static_x, static_y)
            self.graphs[n] = (graph, static_x, static_y)
            graph.replay()  # capturing recorded this step without running it

    def _step_and_sum(self, x: torch.Tensor, y: torch.Tensor) -> None:
        loss, scores = self.trainer.training_step(x, y, autocast_cache=False)  # capture needs no cast cache
        self.loss_sum += loss.detach() * len(y)
        self.hits += (scores.detach().argmax(1) == y).sum()
        if self.trainer.config.label_smoothing:
            self.cross_entropy_sum += torch.nn.functional.cross_entropy(scores.detach(), y, reduction="sum")

    def read(self) -> tuple[float, float, int]:
        """(mean loss, accuracy, samples) of the epoch so far: the one host sync, as RunningMetrics.read."""
        if not self.seen:
            return 0.0, 0.0, 0
        return self.loss_sum.item() / self.seen, self.hits.item() / self.seen, self.seen

    def cross_entropy(self) -> float:
        """The plain cross-entropy of the epoch's steps so far, as RunningMetrics.cross_entropy."""
        return self.cross_entropy_sum.item() / self.seen if self.seen else 0.0
