"""`mnistlab sweep` on a real local Ray instance, `reproduce --ray`, and the sweep's space and its errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnistlab.errors import ConfigError
from mnistlab.runs import RunFolder, SweepFolder
from mnistlab.sweep import Dimension, SweepSpec, check, parse_dimension, read_space, settings_of

ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # as each trial computes: the figures then repeat exactly


def mnistlab(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, timeout=900,
                          env=env)


# ---------------------------------------------------------------- the space
def test_dimensions_are_read_from_flags_and_toml(tmp_path):
    assert parse_dimension("lr=loguniform:0.1:2") == Dimension("lr", "loguniform", (0.1, 2.0))
    assert parse_dimension("batch-size=choice:128, 256") == Dimension("batch_size", "choice", (128, 256))
    assert parse_dimension("epochs=int:2:4") == Dimension("epochs", "int", (2, 4))
    assert parse_dimension("model=grid:fastnet,allconv").values == ("fastnet", "allconv")
    space = tmp_path / "space.toml"
    space.write_text('[space]\nlr = "uniform:0.1:0.5"\naugment.rotate = "choice:0,10"\n')
    assert [d.spec for d in read_space([str(space), "warmup=uniform:0:1"])] == [
        "lr=uniform:0.1:0.5", "augment.rotate=choice:0,10", "warmup=uniform:0.0:1.0"]
    assert settings_of({"lr": 0.2, "augment.rotate": 10, "model_options.width": 8}) == {
        "lr": 0.2, "augment": {"rotate": 10}, "model_options": {"width": 8}}


@pytest.mark.parametrize("spec, message", [
    ("lrate=uniform:0.1:1", "'lrate' is not a training setting"),
    ("augment.spin=choice:1,2", "augment has no 'spin'"),
    ("lr=uniform:0.5:0.5", "the range 0.5 to 0.5 is empty"),
    ("lr=uniform:2:1", "is empty; give LOW below HIGH"),
    ("lr=loguniform:0:1", "above 0"),
    ("lr=normal:0:1", "is not SETTING=KIND:VALUES"),
    ("lr", "is not SETTING=KIND:VALUES"),
    ("batch_size=int:a:b", "two whole numbers"),
    ("batch_size=choice:,", "no values to choose from"),
])
def test_a_bad_dimension_gets_one_clear_error(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_dimension(spec)


def test_the_whole_request_is_checked_before_anything_starts():
    with pytest.raises(ConfigError, match="--space lr=uniform:-1.0:1.0: -1.0 is not a value for lr"):
        check(SweepSpec("fast", ["lr=uniform:-1:1"], {}))
    with pytest.raises(ConfigError, match="--search grid needs listed values"):
        check(SweepSpec("fast", ["lr=uniform:0.1:1"], {}, search="grid"))
    with pytest.raises(ConfigError, match="names 'lr' twice"):
        check(SweepSpec("fast", ["lr=uniform:0.1:1", "lr=choice:0.1"], {}))
    with pytest.raises(ConfigError, match="a sweep needs a space"):
        check(SweepSpec("fast", [], {}))
    with pytest.raises(ConfigError, match="unknown recipe"):
        check(SweepSpec("fastest", ["lr=uniform:0.1:1"], {}))
    spec = SweepSpec("fast", ["lr=uniform:0.1:1"], {"subset": 2000})
    check(spec)
    # `fast` trains without validation: its trials hold out a split to be judged on, and never test
    assert spec.base_settings()["validation"] == "split" and spec.base_settings()["test"] is False


@pytest.mark.parametrize("args, message", [
    (["--space", "lrate=uniform:0.1:1"], "'lrate' is not a training setting"),
    (["--space", "lr=uniform:1:1"], "is empty"),
    (["--space", "lr=uniform:0.1:1", "--address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    (["--space", "lr=uniform:0.1:1", "--address", "ray://127.0.0.1:1"], "no Ray cluster answers at ray://127.0.0.1:1"),
])
def test_bad_input_on_the_command_line_leaves_nothing_behind(tmp_path, capsys, args, message):
    from mnistlab.cli import main

    runs = tmp_path / "sweeps"
    assert main(["sweep", "--recipe", "fast", *args, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("mnistlab: error:") == 1 and message in err, err
    assert not runs.exists()


def test_without_ray_the_sweep_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from mnistlab.cli import main; "
            f"sys.exit(main(['sweep', '--space', 'lr=uniform:0.1:1', '--runs-dir', {str(tmp_path)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "pip install 'mnistlab[ray]'" in result.stderr, result.stderr


# ---------------------------------------------------------------- on Ray
SWEEP = ["sweep", "--recipe", "fast", "--space", "lr=loguniform:0.02:4", "--space", "batch_size=choice:128,256",
         "--set", "subset=3000", "--set", "epochs=3", "--trials", "12"]


def finished_trials(runs: Path) -> list[RunFolder]:
    return [RunFolder(p) for p in sorted(runs.glob("*/trials/*")) if RunFolder(p).state() == "finished"]


@pytest.mark.slow
def test_a_sweep_stops_poor_trials_early_resumes_after_ctrl_c_and_its_best_recipe_trains_again(data_root, tmp_path):
    runs = tmp_path / "sweeps"
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", *SWEEP, "--runs-dir", str(runs)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while len(finished_trials(runs)) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves its state, the sweep says how to go on
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 130 and "mnistlab sweep --resume" in out, out
    (folder,) = runs.iterdir()
    before = {run.path: (run.path / RunFolder.HISTORY).stat().st_mtime_ns for run in finished_trials(runs)}
    assert SweepFolder.open(folder).spec()["state"] == "interrupted"

    result = mnistlab("sweep", "--resume", str(folder))
    assert result.returncode == 0, result.stdout + result.stderr
    for path, mtime in before.items():  # finished trials are kept as they were, not trained again
        assert (path / RunFolder.HISTORY).stat().st_mtime_ns == mtime
    sweep = SweepFolder.open(folder)
    table = json.loads(sweep.file(SweepFolder.TABLE_JSON).read_text())
    rows, summary = table["trials"], table["summary"]
    assert len(rows) == 12 and summary["failed"] == 0
    stopped = [r for r in rows if r["state"] == "stopped early"]
    assert stopped and all(r["epochs"] < 3 for r in stopped)  # ASHA stopped the poor ones
    assert all(r["epochs"] == 3 for r in rows if r["state"] == "finished")
    figures = [r["val_accuracy"] for r in rows]
    assert figures == sorted(figures, reverse=True) and rows[0]["val_accuracy"] == summary["best"]["val_accuracy"]
    for row in rows:  # ordinary run folders, which never looked at the test set
        run = RunFolder.open(row["run"])
        assert run.settings()["test"] is False and "test_accuracy" not in run.metrics()
        assert not (run.path / "curves.png").exists()  # nor drew figures: a few seconds a trial
    assert 0.9 < summary["best"]["test"]["test_accuracy"] <= 1  # tested once, at the end
    assert "| trial | lr | batch_size | val_accuracy | epochs | state |" in sweep.file(SweepFolder.TABLE_MD).read_text()
    assert sweep.file(SweepFolder.PLOT).stat().st_size > 10_000

    again = mnistlab("train", "--recipe", str(sweep.file(SweepFolder.BEST_RECIPE)), "--runs-dir",
                     str(tmp_path / "again"), "--json", env=ONE_THREAD)
    assert again.returncode == 0, again.stderr
    metrics = json.loads(again.stdout)["metrics"]
    assert metrics["best_val_accuracy"] == rows[0]["val_accuracy"]  # the same figure, trained again
    assert "test_accuracy" in metrics  # a recipe of one's own now, which tests


@pytest.mark.slow
def test_reproduce_on_ray_builds_the_table_that_reproduce_builds_here(data_root, tmp_path):
    tables = {}
    for how, extra in (("here", []), ("ray", ["--ray"])):
        result = mnistlab("reproduce", "logreg", "vanilla-cnn", "--quick", "--runs-dir", str(tmp_path / how), *extra,
                          env=ONE_THREAD)
        assert result.returncode == 0, result.stdout + result.stderr
        tables[how] = json.loads((tmp_path / how / "reproduce.json").read_text())
    assert [r["recipe"] for r in tables["ray"]] == ["logreg", "vanilla-cnn"]
    for here, ray in zip(tables["here"], tables["ray"], strict=True):
        for key in ("recipe", "published", "seeds", "epochs", "quick", "device", "machine", "mnistlab"):
            assert ray[key] == here[key], key


@pytest.mark.slow
def test_an_optuna_search_without_early_stopping_runs_every_trial_out(data_root, tmp_path):
    result = mnistlab("sweep", "--recipe", "fast", "--space", "lr=loguniform:0.05:1", "--space", "warmup=uniform:0:0.5",
                      "--set", "subset=1000", "--set", "epochs=2", "--trials", "3", "--search", "optuna",
                      "--scheduler", "none", "--runs-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = map(SweepFolder, tmp_path.iterdir())
    table = json.loads(folder.file(SweepFolder.TABLE_JSON).read_text())
    printed = json.loads(result.stdout[result.stdout.index("{\n"):])  # --json: after the trials' lines
    assert printed["state"] == "finished" and printed["summary"] == table["summary"]
    rows = table["trials"]
    assert len(rows) == 3 and all(r["state"] == "finished" and r["epochs"] == 2 for r in rows)
    assert len({r["settings"]["lr"] for r in rows}) == 3
