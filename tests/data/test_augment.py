import pytest
import torch
import torch.nn.functional as F

from mnistlab.data.augment import _affine_grid, augment_batch, preview_augmentation
from mnistlab.errors import ConfigError
from mnistlab.settings import AugmentConfig, parse_augment


def batch(mnist, n=64):
    return torch.from_numpy(mnist.train_images[:n]).float().unsqueeze(1)


def test_each_sample_gets_its_own_seeded_transform(mnist):
    x = batch(mnist)
    config = parse_augment("rotate=10,zoom=0.1,shear=0.3,shift=0.1")
    a = augment_batch(x, config, torch.Generator().manual_seed(1))
    b = augment_batch(x, config, torch.Generator().manual_seed(1))
    c = augment_batch(x, config, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    changed = (a - x).abs().flatten(1).amax(1) > 0
    assert changed.all()
    # ink is moved, not destroyed: total brightness stays within 25% per digit
    ratio = a.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert ((ratio > 0.75) & (ratio < 1.25)).all()


@pytest.mark.parametrize("h, w", [(28, 28), (5, 9)])
def test_sampling_grid_is_torchs_affine_grid(h, w):
    theta = torch.randn(16, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = F.affine_grid(theta, [16, 1, h, w], align_corners=False)
    assert torch.allclose(_affine_grid(theta, h, w), expected, atol=1e-6)


def test_flip_mirrors_and_erase_blanks(mnist):
    x = batch(mnist, 8)
    assert torch.equal(augment_batch(x, AugmentConfig(flip=1.0), torch.Generator()), x.flip(-1))
    erased = augment_batch(x, AugmentConfig(erase=1.0), torch.Generator().manual_seed(0))
    assert (erased <= x).all() and ((erased == 0) & (x > 0)).any()


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="augment rotate must be >= 0"):
        AugmentConfig(rotate=-1)
    with pytest.raises(ConfigError, match="erase and flip at most 1"):
        parse_augment("flip=2")
    with pytest.raises(ConfigError, match="needs at least one of"):
        preview_augmentation(torch.zeros(28, 28, dtype=torch.uint8).numpy(), {})
