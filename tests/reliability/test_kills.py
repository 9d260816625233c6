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
    started = time.perf_counter()
    process = mnistlab("train", *TRAIN, "--runs-dir", str(runs))
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return RunFolder.open(runs / "mnist-mlp-1"), time.perf_counter() - started


def test_kill_9_anywhere_then_resume_ends_bit_identical(whole, tmp_path):
    reference, seconds = whole
    expected = load_file(reference.checkpoint("last"))
    rng = random.Random(20)
    resumed = 0
    for kill in range(KILLS):
        runs = tmp_path / f"kill-{kill}"
        process = mnistlab("train", *TRAIN, "--runs-dir", str(runs))
        time.sleep(rng.uniform(0.3, 1.0) * seconds)  # anywhere from start-up to the last epoch's writes
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        folders = list(runs.glob("mnist-mlp-*")) if runs.is_dir() else []
        if not folders:  # killed before the run folder existed: nothing to resume, nothing left behind
            continue
        run = RunFolder(folders[0])
        if run.state() == "finished":  # it ended before the kill
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
