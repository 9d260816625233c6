"""A disk that fills up during training: one clear line that says how to continue, the checkpoints of
finished epochs intact, and a resume (once there is space) that ends as if nothing had happened."""

import errno
import os
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from mnistlab.errors import MnistlabError
from mnistlab.runs import RunFolder
from mnistlab.training import build_config, resume, train
from mnistlab.training.callbacks import Callback

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs as a full disk needs root")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazily: a closed file may still be held


class FillTheDisk(Callback):
    """At the start of `epoch`, fill what is left of the run's disk."""

    def __init__(self, folder, epoch):
        self.folder, self.epoch = folder, epoch

    def on_epoch_begin(self, trainer, epoch):
        if epoch != self.epoch:
            return
        with open(self.folder / "filler", "wb") as f:
            try:
                while True:
                    f.write(bytes(2**16))
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC


def test_a_full_disk_is_one_line_and_the_run_resumes(small_disk, tmp_path):
    config = build_config(overrides={"model": "linear", "subset": 3000, "epochs": 3, "tensorboard": False,
                                     "tta": False, "lr": 0.1})
    whole = train(config, tmp_path / "whole", progress="quiet")
    with pytest.raises(MnistlabError) as error:
        train(config, small_disk / "runs", progress="quiet", callbacks=[FillTheDisk(small_disk, 2)])
    message = str(error.value)
    assert "no space left on the disk" in message and "mnistlab train --resume" in message and "\n" not in message
    run = RunFolder(small_disk / "runs" / "mnist-linear-1")
    assert [r["epoch"] for r in run.history()] == [1]  # the finished epoch is intact
    assert torch.load(run.last_state, weights_only=True)["epoch"] == 1
    assert not list(run.checkpoints.glob(".*.part"))  # no half-written file left
    (small_disk / "filler").unlink()
    resumed = resume(run.path, progress="quiet")
    wa, wb = load_file(whole.checkpoint("last")), load_file(resumed.checkpoint("last"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.state() == "finished"
