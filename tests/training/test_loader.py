import numpy as np
import pytest
import torch

from mnistlab.settings import AugmentConfig
from mnistlab.training.loader import DeviceBatches

CPU = torch.device("cpu")


def test_batches_cover_the_epoch_once_in_a_seeded_order(mnist):
    images = torch.from_numpy(mnist.train_images[:1000])
    labels = torch.from_numpy(mnist.train_labels[:1000]).long()
    batches = DeviceBatches(images, labels, 128, AugmentConfig())
    batches.generator.manual_seed(3)
    first = [y for _, y in batches]
    assert len(first) == len(batches) == 8 and first[-1].shape == (1000 - 7 * 128,)
    assert np.array_equal(np.sort(torch.cat(first).numpy()), np.sort(labels.numpy()))
    batches.generator.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(first, (y for _, y in batches)))
    dropping = DeviceBatches(images, labels, 128, AugmentConfig(), drop_last=True)
    assert len(dropping) == 7 and [len(y) for _, y in dropping] == [128] * 7


def test_unaugmented_batches_stay_uint8_and_the_model_reads_them_as_floats(mnist):
    from mnistlab.models import create_model

    images = torch.from_numpy(mnist.train_images[:300])
    batches = DeviceBatches(images, torch.from_numpy(mnist.train_labels[:300]).long(), 128, AugmentConfig())
    x, _ = next(iter(batches))
    assert x.dtype == torch.uint8 and x.shape == (128, 1, 28, 28)
    model = create_model("mlp")
    model.normalize.fit(mnist.train_images[:300])
    assert torch.equal(model(x), model(x.float()))
    augmented = DeviceBatches(images, torch.from_numpy(mnist.train_labels[:300]).long(), 128,
                              AugmentConfig(shift=0.1))
    assert next(iter(augmented))[0].dtype == torch.float32


def test_a_whole_epoch_augmented_at_once_gives_the_same_batches_otherwise_drawn(mnist):
    """For CUDA graphs: the same order and shapes, float pixels transformed per sample, other draws."""
    images = torch.from_numpy(mnist.train_images[:1000])
    labels = torch.from_numpy(mnist.train_labels[:1000]).long()
    augment = AugmentConfig(rotate=10, shift=0.1)
    per_batch = DeviceBatches(images, labels, 128, augment, channels_last=True)
    whole = DeviceBatches(images, labels, 128, augment, channels_last=True, augment_whole_epoch=True)
    per_batch.generator.manual_seed(5)
    whole.generator.manual_seed(5)
    pairs = list(zip(per_batch, whole))
    assert len(pairs) == 8
    for (xa, ya), (xb, yb) in pairs:
        assert torch.equal(ya, yb) and xa.shape == xb.shape and xb.dtype == torch.float32
        assert xb.is_contiguous(memory_format=torch.channels_last)
    moved = [(xb - xa).abs().mean().item() for (xa, _), (xb, _) in pairs]
    assert min(moved) > 1.0  # pixels 0-255: each batch drew its own transforms
    plain = DeviceBatches(images, labels, 128, AugmentConfig(), augment_whole_epoch=True)
    assert next(iter(plain))[0].dtype == torch.uint8  # nothing to augment: uint8 views as before


def test_shares_of_several_processes_are_the_batches_one_process_draws(mnist):
    images = torch.from_numpy(mnist.train_images[:1000])
    labels = torch.from_numpy(mnist.train_labels[:1000]).long()
    alone = DeviceBatches(images, labels, 128, AugmentConfig())
    alone.generator.manual_seed(5)
    expected = [y for _, y in alone]
    shares = []
    for rank in range(3):
        batches = DeviceBatches(images, labels, 128, AugmentConfig(), share=(rank, 3))
        batches.generator.manual_seed(5)
        shares.append([y for _, y in batches])
        assert len(batches) == len(alone)
    for step, batch in enumerate(expected):  # rank by rank, each step's shares make up the whole batch
        assert torch.equal(torch.cat([shares[rank][step] for rank in range(3)]), batch)
    # a last batch smaller than the number of processes would leave one with nothing: it is left out
    few = DeviceBatches(images[:130], labels[:130], 128, AugmentConfig(), share=(0, 3))
    assert len(few) == 1 and few.last_batch_size == 2


def test_batches_are_gathered_as_drawn_so_a_kept_batch_stays_as_it_was(mnist):
    # no permuted copy of the training set per epoch: each batch is its own tensor, not a view of a buffer
    images = torch.from_numpy(mnist.train_images[:1000])
    labels = torch.from_numpy(mnist.train_labels[:1000]).long()
    batches = DeviceBatches(images, labels, 128, AugmentConfig())
    batches.generator.manual_seed(1)
    kept, _ = next(iter(batches))
    seen = kept.clone()
    for _ in batches:  # the next epoch, in another order
        pass
    assert torch.equal(kept, seen) and kept.untyped_storage().nbytes() == 128 * 28 * 28
    with pytest.raises(ValueError, match="one process"):
        DeviceBatches(images, labels, 128, AugmentConfig(), augment_whole_epoch=True, share=(0, 2))
