import gzip

import numpy as np
import pytest

from mnistlab.data.idx import encode_idx, load_idx, load_idx_images, load_idx_labels, parse_idx
from mnistlab.errors import DataError


def test_round_trip_of_every_supported_type(tmp_path):
    for dtype in (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64):
        array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        path = tmp_path / f"a-{np.dtype(dtype).name}"
        path.write_bytes(encode_idx(array))
        loaded = load_idx(path)
        assert loaded.dtype == np.dtype(dtype) and np.array_equal(loaded, array)


def test_gzipped_and_plain_give_the_same_array(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "plain").write_bytes(encode_idx(images))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(encode_idx(images)))
    assert np.array_equal(load_idx_images(tmp_path / "plain"), load_idx_images(tmp_path / "packed.gz"))
    assert load_idx_images(tmp_path / "plain").flags.writeable


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "only 2 bytes"),
    (b"\x12\x34\x08\x03" + b"\x00" * 12, "bad magic number"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05" + b"\x01\x02", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02" + b"\x01\x02\x03", "trailing bytes"),
])
def test_malformed_bytes_give_one_clear_error(data, message):
    with pytest.raises(DataError, match=message) as info:
        parse_idx(data, "some-file")
    assert "some-file" in str(info.value)


def test_truncated_real_file_names_file_and_problem(tmp_path, data_root):
    raw = gzip.decompress((data_root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: IDX file truncated.*\(10000, 28, 28\)"):
        load_idx_images(path)


def test_corrupt_gzip_is_reported(tmp_path, data_root):
    packed = (data_root / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(packed[: len(packed) - 100])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        load_idx_labels(path)


def test_labels_as_images_and_label_range(tmp_path):
    labels = np.array([0, 3, 12], dtype=np.uint8)
    path = tmp_path / "labels"
    path.write_bytes(encode_idx(labels))
    with pytest.raises(DataError, match=r"expected an IDX file of uint8 images \(N, H, W\)"):
        load_idx_images(path)
    with pytest.raises(DataError, match="label 12 is out of range for 10 classes"):
        load_idx_labels(path, num_classes=10)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_idx(tmp_path / "nothing")
