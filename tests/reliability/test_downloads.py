"""Interrupted and corrupt downloads from a local server, with and without published checksums: a file
appears only when it arrived whole, and the error names only what is still missing."""

import http.server
import shutil

import pytest

from mnistlab.data import load_dataset
from mnistlab.data.registry import DATASETS, DatasetSpec
from mnistlab.errors import DataError

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz"]


class NoLengthHandler(http.server.SimpleHTTPRequestHandler):
    """Sends no Content-Length; files named in `cut` stop after 1,000 bytes and the connection closes, so
    the client sees a short file that ends cleanly."""

    cut: tuple[str, ...] = ()

    def log_message(self, *args):
        pass

    def send_header(self, keyword, value):
        if keyword.lower() != "content-length":
            super().send_header(keyword, value)

    def copyfile(self, source, outputfile):
        if any(self.path.endswith(name) for name in self.cut):
            outputfile.write(source.read()[:1000])
            return
        super().copyfile(source, outputfile)


@pytest.fixture
def mirror(http_mirror):
    def start(directory, cut=()):
        return http_mirror(directory, type("H", (NoLengthHandler,), {"cut": tuple(cut)}))

    return start


def test_a_short_download_without_checksum_or_length_is_not_kept(mirror, data_root, tmp_path, monkeypatch):
    url = mirror(data_root / "mnist", cut=["t10k-labels-idx1-ubyte.gz"])  # the last of the four
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", "test", DATASETS["mnist"].class_names, (url,), {}))
    with pytest.raises(DataError) as error:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(error.value)
    assert "is missing t10k-labels-idx1-ubyte in" in message  # only the one still missing
    assert "not whole" in message and "truncated" in message
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(set(FILES) - {"t10k-labels-idx1-ubyte.gz"})
    # the next attempt, from a mirror that sends it whole, fetches only that file
    good = mirror(data_root / "mnist")
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", "test", DATASETS["mnist"].class_names, (good,), {}))
    assert load_dataset("mnist", data_dir=tmp_path).test_labels.shape == (10000,)


def test_a_corrupt_file_on_disk_is_named_with_what_to_do(data_root, tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(data_root / "mnist", folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 100)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip data.*delete the file"):
        load_dataset(folder)
