"""The holes that small hostile files opened, each closed: bombs, overflowing headers, odd arrays, huge
pictures. Every one gets mnistlab's own error, naming the file, at a bounded cost."""

import io

import numpy as np
import pytest
from hostile import gzip_bomb, idx_header, npy_declaring, peak_memory, png_declaring
from PIL import Image

from mnistlab.data.idx import encode_idx, read_idx
from mnistlab.data.inputs import InputLimits, model_input, read_input
from mnistlab.errors import DataError

SMALL = InputLimits(max_pixels=16_000_000, max_array_bytes=64 * 2**20, max_images=10_000)


def read(data: bytes, name: str, limits: InputLimits = SMALL):
    return model_input(*read_input(data, name, limits), name, (28, 28), True, limits)


def test_a_gzip_bomb_behind_a_small_header_is_not_inflated():
    bomb = gzip_bomb(idx_header(0x08, (10, 28, 28)), 256 * 2**20)  # 256 kB that inflate to 256 MB
    assert len(bomb) < 2**20
    with peak_memory(16 * 2**20), pytest.raises(DataError, match="bomb.idx.gz: IDX file has trailing bytes"):
        read(bomb, "bomb.idx.gz")


def test_a_header_declaring_more_than_allowed_is_refused_before_reading():
    honest = gzip_bomb(idx_header(0x08, (2**20, 28, 28)), 2**20)  # declares 822 MB
    with peak_memory(8 * 2**20), pytest.raises(DataError, match=r"declares shape \(1048576, 28, 28\).*allowed"):
        read(honest, "big.idx.gz")
    with pytest.raises(DataError, match="MNISTLAB_MAX_IDX_MB"):
        read_idx(idx_header(0x08, (2**20, 28, 28)), "local-idx", max_bytes=2**20)


def test_idx_dimensions_whose_product_overflows_int64_are_refused():
    header = idx_header(0x08, (65536, 65536, 65536, 65536))  # 2**64 values: wraps to 0 in int64
    with pytest.raises(DataError, match=r"declares shape \(65536, 65536, 65536, 65536\)"):
        read(header, "overflow-idx")


def test_an_npy_declaring_a_trillion_values_is_refused_from_its_header():
    with peak_memory(4 * 2**20), pytest.raises(DataError, match=r"declares shape \(1000000, 1000000\)"):
        read(npy_declaring((10**6, 10**6)), "huge.npy")
    with pytest.raises(DataError, match="truncated .npy"):
        read(npy_declaring((10, 28, 28)), "short.npy")


def npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


@pytest.mark.parametrize("array, message", [
    (np.full((2, 28, 28), np.nan, np.float32), "NaN or infinite"),
    (np.full((2, 28, 28), np.inf), "NaN or infinite"),
    (np.ones((2, 28, 28), np.complex64), "complex64 values"),
    (np.array([{"a": 1}], dtype=object), "object values"),
    (np.zeros((0, 28, 28), np.uint8), "holds no images"),
    (np.zeros((0, 784), np.uint8), "holds no images"),
    (np.array(["x" * 784]), "<U784 values"),
    (np.zeros((10_001, 28, 28), np.uint8), "10,001 images, more than the 10,000 allowed"),
])
def test_odd_arrays_get_a_clear_error(array, message):
    with pytest.raises(DataError, match=message):
        read(npy(array), "odd.npy")
    if array.dtype.kind in "uif":  # the same holds in an IDX file
        with pytest.raises(DataError, match=message):
            read(encode_idx(array.astype(np.float32 if array.dtype.kind == "c" else array.dtype)), "odd-idx")


def test_a_picture_declaring_too_many_pixels_is_refused_before_decoding():
    with peak_memory(4 * 2**20), pytest.raises(DataError, match=r"10000x10000 pixels, more than the 16,000,000"):
        read(png_declaring(10_000, 10_000), "huge.png")
    with pytest.raises(DataError, match="25,000,000 allowed"):  # the local default
        read_input(png_declaring(6000, 6000), "photo.png")


def test_an_animation_is_refused_with_what_to_do():
    frames = [Image.new("L", (28, 28), c) for c in (0, 255)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(DataError, match="an animation of 2 frames; save the frame you mean"):
        read(out.getvalue(), "wave.gif")


def test_good_files_still_read(digit_png, mnist):
    assert read(digit_png, "digit.png").shape == (1, 28, 28)
    assert read(encode_idx(mnist.test_images[:3]), "three-idx").shape == (3, 28, 28)
    assert read(npy(mnist.test_images[:3].astype(np.float32)), "three.npy").dtype == np.float32


def test_predict_answers_the_good_files_beside_hostile_ones(mnist_runs, digit_png, tmp_path, capsys):
    from mnistlab.cli import main

    (tmp_path / "a-digit.png").write_bytes(digit_png)
    (tmp_path / "b-huge.npy").write_bytes(npy_declaring((10**6, 10**6)))
    (tmp_path / "c-bomb-idx.gz").write_bytes(gzip_bomb(idx_header(0x08, (10, 28, 28)), 64 * 2**20))
    (tmp_path / "d-photo.png").write_bytes(png_declaring(3000, 3000))
    run = str(mnist_runs[0].path)
    with pytest.raises(SystemExit) as failed:  # some files failed: exit 1, after every file was answered
        main(["predict", run, str(tmp_path), "--max-megapixels", "5"])
    assert failed.value.code == 1
    out, err = capsys.readouterr()
    assert "a-digit.png:" in out and err.count("mnistlab: error:") == 3
    assert "declares shape (1000000, 1000000)" in err and "trailing bytes" in err and "3000x3000 pixels" in err
    assert main(["predict", run, str(tmp_path / "a-digit.png"), "--max-megapixels", "0"]) == 2


def test_the_local_bound_on_declared_bytes_is_a_setting(monkeypatch):
    declares_3_mb = idx_header(0x08, (4000, 28, 28))
    with pytest.raises(DataError, match="truncated"):  # within the default 1 GiB: read, and found short
        read_input(declares_3_mb, "local-idx")
    monkeypatch.setenv("MNISTLAB_MAX_IDX_MB", "1")
    with pytest.raises(DataError, match="more than the 1,048,576 bytes of values allowed"):
        read_input(declares_3_mb, "local-idx")


def test_small_pictures_are_told_from_the_rest_by_their_headers_alone():
    """The server answers small pictures at once and hands the rest to its pool: a header that declares
    too much, or a file that is not a picture, must never pass as small."""
    from mnistlab.data.inputs import is_small_picture

    pad = io.BytesIO()
    Image.new("L", (280, 280), 255).save(pad, format="PNG")
    assert is_small_picture(pad.getvalue(), "pad.png")
    assert not is_small_picture(png_declaring(20_000, 20_000), "bomb.png")  # 400 MP in a few hundred bytes
    assert not is_small_picture(pad.getvalue(), "pad.npy") and not is_small_picture(b"\0" * 100, "digits.idx")
    assert is_small_picture(b"\x89PNG\r\n\x1a\nbroken", "broken.png")  # refused as fast as it is read
