import os

import pytest

from mnistlab._io import FILE_MODE, atomic_write


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    with atomic_write(tmp_path / "sub" / "atomic", "w") as f:
        f.write("x")
    mode = (tmp_path / "sub" / "atomic").stat().st_mode & 0o777
    assert mode == FILE_MODE == (tmp_path / "plain").stat().st_mode & 0o777


def test_atomic_write_leaves_nothing_when_the_block_fails(tmp_path):
    (tmp_path / "keep").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "keep", "w") as f:
            f.write("half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "keep").read_text() == "old" and os.listdir(tmp_path) == ["keep"]
