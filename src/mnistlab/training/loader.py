"""The data path of training: batches drawn by index from whole splits held on the device (`data/splits.py`).

airbench-style: no Dataset, no DataLoader workers. Scaling to float, augmentation and the memory format
happen per batch on the device; normalization happens inside the model.
"""

from __future__ import annotations

import torch

from mnistlab.data.augment import augment_batch
from mnistlab.settings import AugmentConfig


class DeviceBatches:
    """Iterate one epoch of (x (B, 1, H, W) pixels 0-255, y int64 (B,)) from a seeded permutation.

    x is uint8 without augmentation (the model's normalization converts it in the same multiply-add, one op
    and 300 kB of memory traffic fewer per step) and float with it. Each batch is gathered by index from the
    images as it is drawn, so the loader holds no copy of the training set (a permuted one of MNIST's is 47 MB).
    The permutation and the augmentation draw from `generator`, which the trainer reseeds every epoch, so an
    epoch is the same whether or not the run was resumed before it. With `augment_whole_epoch` the epoch is
    gathered and augmented in one call before its first batch (for CUDA graphs, whose steps must not launch
    anything else; the batches are then views of a buffer that the next epoch overwrites); the draws
    differ, not their distribution.

    In one of several processes (`share=(rank, world_size)`), every process draws the same permutation and
    takes its share of each global batch of `batch_size` (`tensor_split`: shares differ by at most one image),
    so together they see the batches one process would; a last batch smaller than the number of processes
    is left out, since a process cannot step on nothing. Augmentation draws differ per process.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, augment: AugmentConfig,
                 channels_last: bool = False, drop_last: bool = False, augment_whole_epoch: bool = False,
                 share: tuple[int, int] = (0, 1)):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.augment, self.channels_last, self.drop_last = augment, channels_last, drop_last
        self.augment_whole_epoch = augment_whole_epoch
        self.rank, self.world_size = share
        if augment_whole_epoch and self.world_size > 1:
            raise ValueError("augment_whole_epoch is for CUDA graphs, which train in one process")
        self.generator = torch.Generator(device=images.device)
        self._epoch_images: torch.Tensor | None = None

    @property
    def last_batch_size(self) -> int:
        """Images in the epoch's last global batch (batch_size when it is full)."""
        return len(self.images) % self.batch_size or self.batch_size

    def __len__(self) -> int:
        n = len(self.images)
        if self.drop_last or self.last_batch_size < self.world_size:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.images), generator=self.generator, device=self.images.device)
        steps = len(self)
        if self.augment_whole_epoch:
            return self._whole_epoch(order, steps)
        picks = order.split(self.batch_size)[:steps]
        if self.world_size > 1:  # this process's share of every batch; its own augmentation draws
            self.generator.manual_seed(self.generator.initial_seed() + 7919 * self.rank)
            picks = [p.tensor_split(self.world_size)[self.rank] for p in picks]
        return (self._prepare(*self._gather(p)) for p in picks)

    def _gather(self, picks: torch.Tensor, into: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 1, H, W) and labels (B,) at `picks`, the images written into `into` (B, H, W) when given:
        index_select on rows of H*W bytes is several times faster than advanced indexing on (N, H, W)."""
        h, w = self.images.shape[1:]
        rows = None if into is None else into.view(-1, h * w)
        x = torch.index_select(self.images.view(-1, h * w), 0, picks, out=rows)
        return x.view(len(picks), 1, h, w), self.labels.index_select(0, picks)

    def _whole_epoch(self, order: torch.Tensor, steps: int):
        # one gather per epoch, into a buffer kept across epochs (3.5x faster than into a fresh tensor, which
        # page-faults: 6.5 ms against 23 ms for all of MNIST), then a few large launches instead of a few a step
        if self._epoch_images is None:
            self._epoch_images = torch.empty_like(self.images)
        images, labels = self._gather(order, into=self._epoch_images)
        if self.augment.active or self.channels_last:
            images, labels = self._prepare(images, labels)
        return zip(images.split(self.batch_size)[:steps], labels.split(self.batch_size)[:steps])

    def _prepare(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.augment.active:
            x = augment_batch(x.float(), self.augment, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y
