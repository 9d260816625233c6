import gzip
import hashlib
import shutil

import numpy as np
import pytest

from mnistlab.data import describe_dataset, load_dataset, resolve_data_root
from mnistlab.data.idx import encode_idx
from mnistlab.errors import ConfigError, DataError


def test_mnist_is_byte_exact_and_fast(data_root):
    # MD5 of the uncompressed originals, as published with the data.
    expected = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
                "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}
    for name, md5 in expected.items():
        raw = gzip.decompress((data_root / "mnist" / f"{name}.gz").read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5
    data = load_dataset("mnist")
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28) and data.test_labels.shape == (10000,)
    assert data.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert repr(data).startswith("Dataset('mnist': 60,000 training and 10,000 test images of 28x28, 10 classes")


def test_describe_counts_classes(mnist):
    info = describe_dataset(mnist)
    train = info["splits"]["train"]
    assert train["count"] == 60000 and sum(train["class_counts"]) == 60000
    assert train["class_counts"][1] == 6742 and info["splits"]["test"]["class_counts"][5] == 892
    assert (train["pixel_min"], train["pixel_max"]) == (0, 255) and train["labels"] == list(range(10))


def test_fashion_has_class_names(fashion):
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert fashion.num_classes == 10 and len(fashion.test_images) == 10000


def _write_custom(folder, n=30, gz=True, classes=None):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 3, n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = encode_idx(array)
            name = f"{prefix}-{kind}-ubyte"
            (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    if classes:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")


def test_custom_folder_gzipped_or_not(tmp_path):
    _write_custom(tmp_path / "plain", gz=False)
    _write_custom(tmp_path / "named", classes=["cat", "dog", "bird"])
    plain = load_dataset(tmp_path / "plain")
    assert plain.name == "plain" and plain.class_names == ("0", "1", "2")
    named = load_dataset(str(tmp_path / "named"))
    assert named.class_names == ("cat", "dog", "bird") and len(named.train_images) == 30


def test_custom_folder_missing_a_file(tmp_path):
    _write_custom(tmp_path / "broken")
    (tmp_path / "broken" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset(tmp_path / "broken")


def test_mismatched_counts(tmp_path, data_root):
    folder = tmp_path / "mixed"
    shutil.copytree(data_root / "mnist", folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(DataError, match="10000 images but 5 labels"):
        load_dataset(folder)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'mnsit'.*mnist, fashion-mnist, kmnist"):
        load_dataset("mnsit")


def test_offline_error_says_what_is_missing_and_how_to_fix(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("kmnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "kmnist") in message
    assert "--data-dir" in message and "MNISTLAB_DATA" in message


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MNISTLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_root(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv("MNISTLAB_DATA")
    assert resolve_data_root() == tmp_path / "xdg" / "mnistlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_root() == tmp_path / "home" / ".cache" / "mnistlab"


def test_select_samples():
    from mnistlab.data.dataset import select_samples

    assert select_samples(100, "0,5,10-12") == [0, 5, 10, 11, 12]
    assert select_samples(100, [3, 1]) == [3, 1]
    assert select_samples(100, count=4) == [0, 1, 2, 3]
    drawn = select_samples(100, count=30, random=True, seed=1)
    assert len(set(drawn)) == 30 and drawn == select_samples(100, count=30, random=True, seed=1)
    assert drawn != select_samples(100, count=30, random=True, seed=2)
    assert sorted(select_samples(5, count=25, random=True)) == [0, 1, 2, 3, 4]  # no more than there are
    with pytest.raises(ConfigError, match="index 100 is out of range: there are 100 samples"):
        select_samples(100, "99,100")
    with pytest.raises(ConfigError, match="not a list like"):
        select_samples(100, "1-x")
