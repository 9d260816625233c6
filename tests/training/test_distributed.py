"""Training in several processes: 2 processes with gloo on the CPU, started as a user starts them
(`mnistlab train --nproc 2`, which runs torchrun), against one process, each of the two in micro-batches; and
a killed 2-process run resumed."""

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest

from mnistlab.errors import ConfigError
from mnistlab.runs import RunFolder
from mnistlab.training.distributed import check_settings, launch

# an MLP in float32 (batch norm would normalize over each process's share); 18,000 training images in batches
# of 128, so the last batch (80 images) is partial and each process takes 40 of it
TRAIN = ["--model", "mlp", "--lr", "0.05", "--subset", "20000", "--epochs", "4", "--batch-size", "128",
         "--precision", "fp32", "--no-tensorboard", "--no-tta", "--progress", "plain"]


def mnistlab(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mnistlab", "train", *TRAIN, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return out


def kill_tree(process: subprocess.Popen) -> None:
    """kill -9 the launcher and every process it started (torchrun starts them in sessions of their own)."""
    parent = psutil.Process(process.pid)
    processes = [*parent.children(recursive=True), parent]
    for p in processes:
        p.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    psutil.wait_procs(processes, timeout=30)  # reaped: the run then reads as stopped


def test_two_processes_follow_the_loss_curve_of_one_and_a_killed_run_resumes(data_root, tmp_path):
    finish(mnistlab("--runs-dir", str(tmp_path / "one")))
    one = RunFolder.open(tmp_path / "one" / "mnist-mlp-1")

    # each process runs its share of a batch in 2 parts: the gradients are all-reduced once, after the last
    process = mnistlab("--nproc", "2", "--micro-batches", "2", "--runs-dir", str(tmp_path / "two"))
    folder = tmp_path / "two" / "mnist-mlp-1"
    deadline = time.monotonic() + 300
    while not (folder / RunFolder.HISTORY).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_tree(process)
    two = RunFolder.open(folder)
    assert [p.name for p in (tmp_path / "two").iterdir()] == ["mnist-mlp-1"]  # rank 0 alone makes a folder
    assert two.state() == "stopped" and 1 <= len(two.history()) < 4, two.status()

    out = finish(subprocess.Popen([sys.executable, "-m", "mnistlab", "train", "--nproc", "2", "--resume", str(folder)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    assert two.state() == "finished" and out.count("run folder:") == 1, out  # rank 0 speaks for both
    assert len(two.history()) == 4
    # the same global batches, all-reduced: equal but for the order of float additions, whose differences
    # grow over the epochs (measured: the training loss equal to the last digit for 2 epochs, 1e-6 after 3)
    for a, b in zip(one.history(), two.history(), strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4), (a, b)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3), (a, b)
        assert abs(b["accuracy"] - a["accuracy"]) <= 1e-3 and abs(b["val_accuracy"] - a["val_accuracy"]) <= 1e-3
    assert two.metrics()["test_accuracy"] == pytest.approx(one.metrics()["test_accuracy"], abs=0.002)
    assert two.metrics()["world_size"] == 2 and one.metrics()["world_size"] == 1
    assert json.loads((folder / RunFolder.ENVIRONMENT).read_text())["world_size"] == 2
    assert two.settings()["micro_batches"] == 2  # and resumed with its own settings


def test_settings_that_several_processes_cannot_use_are_refused(monkeypatch):
    import torch

    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="sync_bn needs GPUs"):
        check_settings(128, False, True, cpu)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="batch_size 128 does not split evenly over 3 processes"):
        check_settings(128, False, False, cpu)
    with pytest.raises(ConfigError, match="cuda_graph"):
        check_settings(129, True, False, cpu)
    with pytest.raises(ConfigError, match="started by a launcher"):
        launch(2, ["train"])
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ConfigError, match="--nproc must be at least 1"):
        launch(0, ["train"])


def test_a_setting_several_processes_cannot_use_is_said_once_before_any_starts(tmp_path):
    # said by the launcher: were every process to fail alike, torchrun could stop rank 0 before it said why
    result = subprocess.run([sys.executable, "-m", "mnistlab", "train", "--nproc", "2", "--batch-size", "127",
                             "--runs-dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.count("mnistlab: error: batch_size 127 does not split evenly over 2 processes") == 1
    assert "Traceback" not in result.stderr and not any(tmp_path.iterdir())


def test_an_error_every_process_meets_is_said_once(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnistlab", "train", "--nproc", "2", "--dataset",
                             str(tmp_path / "missing"), "--runs-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.count("mnistlab: error: unknown dataset") == 1, result.stderr
    assert "Traceback" not in result.stderr


RANK_0_SLOW_TO_SAY = """
import os, sys, time
import mnistlab.training.distributed as distributed

def slow_writer():  # rank 0 says its error late: torchrun stops it as soon as rank 1 has exited
    if os.environ["RANK"] == "0":
        time.sleep(60)
    return os.environ["RANK"] == "0"

distributed.is_writer = slow_writer
from mnistlab.cli import main
sys.exit(main(["train", "--dataset", sys.argv[1]]))
"""

LAUNCH = """
import sys
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run
from mnistlab.training.distributed import unsaid_error
try:
    run(parse_args(["--standalone", "--nproc-per-node=2", *sys.argv[1:]]))
except ChildFailedError as e:
    print({rank: failure.exitcode for rank, failure in sorted(e.failures.items())})
    print("unsaid:", unsaid_error(e.failures))
"""


def test_the_launcher_says_an_error_rank_0_was_stopped_before_saying(tmp_path):
    script = tmp_path / "rank_0_slow.py"
    script.write_text(RANK_0_SLOW_TO_SAY)
    result = subprocess.run([sys.executable, "-c", LAUNCH, str(script), str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    assert lines[0] == "{0: -15, 1: 2}", result.stdout + result.stderr  # rank 0 stopped by SIGTERM
    assert lines[1].startswith("unsaid: unknown dataset"), result.stdout
    assert "mnistlab: error" not in result.stderr  # rank 0 was stopped before it spoke; rank 1 never speaks
