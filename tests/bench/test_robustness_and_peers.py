"""bench/robustness.py (a candidate trained and read on MNIST and on real handwriting) and
bench/peers/compare.py's figures from a curve and its tables (the Keras side needs TensorFlow: not here)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_candidate_is_measured_on_mnist_and_on_real_handwriting(tmp_path, data_root, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    bench = load(BENCH / "robustness.py")
    monkeypatch.setitem(bench.CANDIDATES, "small", ("fast", {"subset": 5000, "augment": "none"}))
    from mnistlab.data import load_dataset

    uci = load_dataset("uci-digits")
    rows = [bench.measure("small", seed, "val", str(tmp_path), (uci.test_images, uci.test_labels)) for seed in (0, 1)]
    for row in rows:
        assert 0.8 < row["mnist_accuracy"] <= 1 and 0.3 < row["handwriting_accuracy"] < row["mnist_accuracy"]
        assert 0 <= row["mnist_ece"] < 0.5 and 0 <= row["handwriting_ece"] < 1
    summary, = bench.summarize(rows)
    assert summary["seeds"] == 2 and summary["mnist_accuracy"][0] == pytest.approx(
        (rows[0]["mnist_accuracy"] + rows[1]["mnist_accuracy"]) / 2)
    assert "| small | 2 |" in bench.format_table([summary], "val") and "validation split" in bench.format_table(
        [summary], "val")


def test_peer_figures_and_tables():
    compare = load(BENCH / "peers" / "compare.py")
    keras = compare.figures({"train_images": 60000, "framework": "Keras", "curve": [
        {"epoch": 1, "train_seconds": 30.0, "test_accuracy": 0.985},
        {"epoch": 2, "train_seconds": 60.0, "test_accuracy": 0.991}]}, 1400.0)
    assert keras["samples_per_s"] == 2000 and keras["seconds_to"] == {0.99: 60.0, 0.995: None}
    mine = compare.figures({"train_images": 60000, "framework": "mnistlab", "curve": [
        {"epoch": 1, "train_seconds": 10.0, "test_accuracy": 0.990},
        {"epoch": 2, "train_seconds": 20.0, "test_accuracy": 0.992}]}, 600.0)
    record = {"recipe": "fast", **compare.figures({"train_images": 60000, "framework": "mnistlab", "curve": [
        {"epoch": 1, "train_seconds": 2.0, "test_accuracy": 0.991}]}, 450.0)}
    table = compare.format_tables([{"tutorial": "keras-cnn", "recipe": "keras-cnn", "keras": keras, "mnistlab": mine}],
                                  [record])
    assert "| keras-cnn | 2 | 2,000 | 6,000 | 3.00x | 60.0 s | 10.0 s |" in table
    assert "| 99.0% | keras-cnn | 60.0 s | fast | 2.0 s | 30.0x | 1,400 MB | 450 MB |" in table
    assert "| 99.5% | none reached it | never | fast | never | - | - | 450 MB |" in table
    assert sys.modules.get("tensorflow") is None
