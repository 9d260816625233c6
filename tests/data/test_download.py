"""The download path, against HTTP servers on 127.0.0.1 serving the shared files."""

import hashlib
import http.server
import socket

import pytest

from mnistlab.data import load_dataset
from mnistlab.data.download import download_files
from mnistlab.data.registry import DATASETS, DatasetSpec
from mnistlab.errors import DataError

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz"]


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = False

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        if self.truncate:  # announce the full length, send half, hang up
            outputfile.write(source.read()[:1000])
            return
        super().copyfile(source, outputfile)


@pytest.fixture
def serve(http_mirror):
    def start(directory, truncate=False):
        return http_mirror(directory, type("H", (_Handler,), {"truncate": truncate}))

    return start


def _dead_mirror() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def _checksums(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


def test_downloads_from_the_next_mirror_when_one_is_down(serve, data_root, tmp_path, monkeypatch):
    good = serve(data_root / "mnist")
    spec = DatasetSpec("mnist", "test", DATASETS["mnist"].class_names, (_dead_mirror(), good),
                       _checksums(data_root / "mnist"))
    monkeypatch.setitem(DATASETS, "mnist", spec)
    data = load_dataset("mnist", data_dir=tmp_path)
    assert data.train_images.shape == (60000, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(FILES)
    # a second load uses the cache: with no mirror at all it still works
    monkeypatch.setitem(DATASETS, "mnist", DatasetSpec("mnist", "test", spec.class_names, (), {}))
    assert load_dataset("mnist", data_dir=tmp_path).test_labels[0] == 7


def test_wrong_checksum_leaves_no_file(serve, data_root, tmp_path):
    url = serve(data_root / "mnist")
    with pytest.raises(DataError, match="does not match the published"):
        download_files(["t10k-labels-idx1-ubyte.gz"], [url], tmp_path, {"t10k-labels-idx1-ubyte.gz": "0" * 64},
                       show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_broken_connection_leaves_no_file_and_moves_on(serve, data_root, tmp_path):
    broken = serve(data_root / "mnist", truncate=True)
    good = serve(data_root / "mnist")
    name = "t10k-labels-idx1-ubyte.gz"
    checksum = _checksums(data_root / "mnist")[name]
    with pytest.raises(DataError, match="connection closed after 1000"):
        download_files([name], [broken], tmp_path, {name: checksum}, retries=1, show_progress=False)
    assert list(tmp_path.iterdir()) == []
    download_files([name], [broken, good], tmp_path, {name: checksum}, retries=1, show_progress=False)
    assert (tmp_path / name).read_bytes() == (data_root / "mnist" / name).read_bytes()


def test_published_checksums_guard_the_real_downloads():
    # The registry carries the published SHA-256 of every file of every dataset.
    for spec in DATASETS.values():
        assert sorted(spec.sha256) == sorted(FILES) and all(len(v) == 64 for v in spec.sha256.values())
        assert spec.mirrors and len(spec.class_names) == 10


def test_offline_download_error_lists_what_each_mirror_said(tmp_path, monkeypatch):
    spec = DatasetSpec("kmnist", "test", DATASETS["kmnist"].class_names, (_dead_mirror(),), {})
    monkeypatch.setitem(DATASETS, "kmnist", spec)
    with pytest.raises(DataError, match=r"download failed .*127\.0\.0\.1.*copy the four files") as error:
        load_dataset("kmnist", data_dir=tmp_path)
    assert str(error.value).count("127.0.0.1") == 1 and "(2 attempts)" in str(error.value)  # one line per mirror
    assert not any((tmp_path / "kmnist").glob("*.gz"))
