"""kill -9 at random points of a training (checkpoint writes included), then --resume: the run ends
bit-identical to one that was never interrupted. MNISTLAB_KILLS sets how many kills (the long mode: 22)."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from mnistlab.runs import RunFolder

KILLS = int(os.environ.get("MNISTLAB_KILLS", "3"))
TRAIN = ["--model", "mlp", "--lr", "0.05", "--subset", "12000", "--epochs", "6", "--batch-size", "64",
         "--no-tensorboard", "--no-tta", "--progress", "plain"]


def mnistlab(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mnistlab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def comparable(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


@pytest.fixture(scope="module")
def whole(tmp_path_factory, data_root):
    runs = tmp_path_factory.mktemp("whole")
    process = mnistlab("train", *TRAIN, "--runs-dir", str(runs))
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return RunFolder.open(runs / "mnist-mlp-1")


def wait_for_the_run_folder(runs, process) -> RunFolder | None:
    """The run folder once its state is written (the data loaded, training about to start)."""
    for _ in range(1200):
        status = list(runs.glob("mnist-mlp-*/run.json")) if runs.is_dir() else []
        if status:
            return RunFolder(status[0].parent)
        if process.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def test_kill_9_anywhere_then_resume_ends_bit_identical(whole, tmp_path):
    reference = whole
    expected = load_file(reference.checkpoint("last"))
    epochs = len(reference.history())
    epoch_seconds = reference.status()["wall_seconds"] / epochs  # an epoch with its checkpoint writes
    rng = random.Random(20)
    resumed = 0
    for kill in range(KILLS):
        runs = tmp_path / f"kill-{kill}"
        process = mnistlab("train", *TRAIN, "--runs-dir", str(runs))
        run = wait_for_the_run_folder(runs, process)
        # a random moment of a random epoch: after `done` epochs have finished, somewhere in the next one
        done = rng.randrange(epochs)
        while run is not None and len(run.history()) < done and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, epoch_seconds))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        if run is None or run.state() == "finished":  # it ended before the kill: nothing to resume
            continue
        assert run.state() in ("stopped", "unknown"), run.status()  # kill -9 leaves no word: read as stopped
        process = mnistlab("train", "--resume", str(run.path))
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, out
        assert run.state() == "finished"
        assert comparable(run.history()) == comparable(reference.history())
        got = load_file(run.checkpoint("last"))
        assert all(torch.equal(expected[k], got[k]) for k in expected)
        assert run.metrics()["test_accuracy"] == reference.metrics()["test_accuracy"]
        resumed += 1
    print(f"\nkills: {KILLS}, resumed to a bit-identical end: {resumed}")
    assert resumed >= min(KILLS, 1) or KILLS == 0
