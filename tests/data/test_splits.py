import pytest
import torch

from mnistlab.data.splits import split_dataset
from mnistlab.errors import ConfigError

CPU = torch.device("cpu")


def test_validation_splits(mnist):
    random = split_dataset(mnist, "split", 0.1, 0, 10000, CPU)
    assert len(random.train_x) == 9000 and len(random.val_x) == 1000
    assert not torch.equal(random.val_x, torch.from_numpy(mnist.train_images[9000:10000]))
    last = split_dataset(mnist, "last", 0.1, 0, 10000, CPU)  # Keras's validation_split: the tail
    assert torch.equal(last.val_x, torch.from_numpy(mnist.train_images[9000:10000]))
    assert torch.equal(last.train_y, torch.from_numpy(mnist.train_labels[:9000]).long())
    test = split_dataset(mnist, "test", 0.1, 0, 0, CPU)
    assert len(test.train_x) == 60000 and torch.equal(test.val_x, test.test_x)
    assert split_dataset(mnist, "none", 0.1, 0, 0, CPU).val_x is None
    with pytest.raises(ConfigError, match="subset 70000 is larger than the 60000 training images"):
        split_dataset(mnist, "none", 0.1, 0, 70000, CPU)
