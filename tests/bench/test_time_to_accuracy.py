"""bench/time_to_accuracy.py: a record is judged against the time allowed on the device it ran on."""

import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

from mnistlab.recipes import load_recipe

SCRIPT = Path(__file__).parents[2] / "bench" / "time_to_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeds(device, accuracies, seconds):
    return [{"seed": i, "final_test_accuracy": a, "final_test_accuracy_without_tta": a - 0.001, "tta": True,
             "train_seconds": s, "seconds_to_target": s if a >= 0.99 else None, "device": device, "curve": []}
            for i, (a, s) in enumerate(zip(accuracies, seconds))]


def test_cpu_and_gpu_runs_are_held_to_their_own_time_limits(bench):
    fast = load_recipe("fast")  # 99.0% within its cpu_seconds on the CPU, its h100_seconds on an H100
    cpu_limit, gpu_limit = fast.target["cpu_seconds"], fast.target["h100_seconds"]
    within_cpu = [0.8 * cpu_limit, 0.9 * cpu_limit]  # inside the CPU's limit, far outside the H100's
    on_cpu = bench.summarize(fast, seeds("cpu, 2 threads", [0.991, 0.990], within_cpu))
    on_gpu = bench.summarize(fast, seeds("NVIDIA H100 80GB HBM3", [0.991, 0.990], within_cpu))
    assert on_cpu["met"] and not on_gpu["met"]
    within_gpu = [0.8 * gpu_limit, 0.9 * gpu_limit]
    assert bench.summarize(fast, seeds("NVIDIA H100 80GB HBM3", [0.991, 0.990], within_gpu))["met"]
    assert not bench.summarize(fast, seeds("cpu, 2 threads", [0.995, 0.985], within_cpu))["met"]  # a seed < 98.9%
    assert not bench.summarize(fast, seeds("cpu, 2 threads", [0.991, 0.990], [1.1 * cpu_limit] * 2))["met"]
    table = bench.format_table([on_cpu, on_gpu])
    assert f"| 99.00% in {cpu_limit:g} s (CPU) |" in table and f"| 99.00% in {gpu_limit:g} s (H100) |" in table
    mean, std = statistics.fmean(within_cpu), statistics.stdev(within_cpu)
    assert f"{mean:.2f} ± {std:.2f} s (2/2)" in table
    assert "| 99.00% | 98.95% ± 0.07 |" in table  # worst seed, then no TTA


def test_the_script_measures_and_writes_its_table(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["time_to_accuracy.py", "--recipes", "fast", "--seeds", "1",
                                      "--device", "cpu", "--out", str(tmp_path)])
    spec = importlib.util.spec_from_file_location("__main__", SCRIPT)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    row, = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    assert row["recipe"] == "fast" and row["device"].startswith("cpu, ")
    assert row["accuracy"][0] > 0.985  # one epoch of the fast recipe on the real MNIST
    seed, = row["seeds"]  # fast reports TTA; the plain answer is beside it, from the same pass
    assert row["tta"] and 0.98 < seed["final_test_accuracy_without_tta"] != seed["final_test_accuracy"]
    limit = load_recipe("fast").target["cpu_seconds"]
    assert f"| fast | 99.00% in {limit:g} s (CPU) |" in (tmp_path / "time_to_accuracy.md").read_text()
