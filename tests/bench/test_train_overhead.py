"""bench/train_overhead.py (a real `mnistlab train` process: its recorded phases and its peak memory) and
bench/sweep_scaling.py's arithmetic."""

import importlib.util
from pathlib import Path


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_training_process_is_measured_whole(tmp_path, data_root):
    bench = load("train_overhead")
    recipe = tmp_path / "small.toml"
    recipe.write_text('[recipe]\ntitle = "small"\n[settings]\nmodel = "linear"\nlr = 0.1\nsubset = 3000\n'
                      'epochs = 2\n')
    row = bench.measure(str(recipe), tmp_path / "runs", [])
    phases = [row[p] for p in bench.PHASES]
    assert all(seconds >= 0 for seconds in phases) and row["training"] > 0 and row["figures"] > 0
    # the parts add up to the process's wall time; what is left is the start-up (imports) and the writing
    assert 0 < row["start-up and the rest"] < row["wall_seconds"]
    assert row["wall_over_training"] == row["wall_seconds"] / row["training"]
    assert 100 < row["peak_rss_mb"] < 4000  # torch alone is a few hundred MB
    assert "| small | " in bench.format_table([row])


def test_repeats_give_median_times_and_the_highest_peak():
    bench = load("train_overhead")
    runs = [{"recipe": "r", "wall_seconds": wall, "training": wall / 2, "peak_rss_mb": peak}
            for wall, peak in ((10.0, 500.0), (12.0, 700.0), (11.0, 550.0))]
    row = bench.summarize(runs)
    assert row["wall_seconds"] == 11.0 and row["training"] == 5.5 and row["repeats"] == 3
    assert row["peak_rss_mb"] == 700.0 and row["peak_rss_mb_median"] == 550.0


def test_the_targets_are_judged_from_the_rows():
    bench = load("train_overhead")
    rows = [{"recipe": "default", "wall_over_training": 1.27, "peak_rss_mb": 548.0},
            {"recipe": "best", "wall_over_training": 1.48, "peak_rss_mb": 819.4}]
    assert bench.format_targets(rows) == ("- the defaults' wall at most 1.25x their training: 1.27x, not met\n"
                                          "- every recipe's peak memory at most 600 MB: not met by best (819 MB)\n")
    rows = [{**rows[0], "wall_over_training": 1.2}]
    assert bench.format_targets(rows) == ("- the defaults' wall at most 1.25x their training: 1.20x, met\n"
                                          "- every recipe's peak memory at most 600 MB: met\n")


def test_the_scaling_tables_work_out_the_cost_of_a_trial():
    bench = load("sweep_scaling")
    result = {"recipe": "fast", "ray_start_seconds": 5.0, "processes": [],
              "sweeps": [{"concurrent": 1, "trials": 8, "wall_seconds": 29.0, "trials_per_minute": 16.6,
                          "train_seconds": 2.5, "run_seconds": 3.0, "overhead_seconds": 0.5, "val_accuracy": 0.98}]}
    table = bench.format_tables(result)
    # 1,000 trials of 3.0 s of a core on 4 nodes of 2 cores, after Ray's 5 s start: 380 s
    assert "| 4 | 6.3 min |" in table and "| 1 | 29.0 s | 16.6 | 2.50 s | 3.00 s | 0.50 s | 0.9800 |" in table
