"""The command line: help is fast (no torch import), output is right, bad input gets one line and exit 2."""

import subprocess
import sys

import pytest

from mnistlab.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True)


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from mnistlab.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [[], ["data"], ["data", "info"], ["models"], ["train"], ["runs"]])
def test_every_help_answers(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0 and "usage: mnistlab" in result.stdout


def test_the_command_exits_with_mains_code_and_its_whole_output(tmp_path):
    """`run` skips Python's teardown: the exit code is main's, the output is all there, even into a pipe
    whose reader has left, and exit handlers still run."""
    ok = run_cli("data", "info", "mnist")
    assert ok.returncode == 0 and ok.stdout.rstrip().endswith("%") and "test: 10,000 images" in ok.stdout
    bad = run_cli("models", "show", "no-such-net")
    assert bad.returncode == 2 and bad.stderr.startswith("mnistlab: error:") and "no-such-net" in bad.stderr
    closed = subprocess.run(f"{sys.executable} -m mnistlab data info mnist | head -c 10", shell=True,
                            capture_output=True, text=True)
    assert closed.stdout == ok.stdout[:10] and "Traceback" not in closed.stderr and "Exception" not in closed.stderr
    marker = tmp_path / "handler-ran"
    code = (f"import atexit, pathlib, sys; atexit.register(pathlib.Path({str(marker)!r}).touch); "
            "sys.argv = ['mnistlab', 'models']; from mnistlab.cli import run; run()")
    handled = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert handled.returncode == 0 and "fastnet" in handled.stdout and marker.is_file()


def test_data_info(capsys):
    assert main(["data", "info", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "train: 60,000 images of 28x28 uint8, pixels 0-255" in out
    assert "  1   6,742  11.24%" in out and "test: 10,000 images" in out


def test_data_show_writes_a_png(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "fashion-mnist", "--out", str(out), "--split", "test", "--indices", "0-3,9"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["data", "show", "mnist", "--out", str(tmp_path / "aug.png"), "--augment", "rotate=10,zoom=0.1"]) == 0


def test_models_list_and_show(capsys):
    assert main(["models"]) == 0
    assert "allconv           72,890" in capsys.readouterr().out
    assert main(["models", "show", "allconv"]) == 0
    assert "Trainable params: 72,890" in capsys.readouterr().out
    assert main(["models", "show", "mlp", "-o", "hidden=[100]"]) == 0
    assert "Total params: 79,510" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["data", "info", "nope"], "unknown dataset 'nope'"),
    (["data", "show", "mnist", "--out", "x.png", "--indices", "70000"], "out of range"),
    (["data", "show", "mnist", "--out", "x.png", "--augment", "spin=3"], "unknown setting 'augment.spin'"),
    (["data", "show", "mnist", "--out", "x.png", "--count", "0"], "count must be at least 1, got 0"),
    (["data", "show", "mnist", "--out", "x.png", "--indices", ","], "names no sample"),
    (["data", "show", "mnist", "--out", "x.png", "--augment", "rotate=10", "--copies", "0"], "copies must be"),
    (["models", "show", "vgg"], "unknown model 'vgg'"),
    (["models", "show", "mlp", "-o", "dropout=1.5"], "dropout must be in [0, 1)"),
    (["models", "show", "mlp", "-o", "hidden=5"], "model 'mlp' option 'hidden' must be a list"),
])
def test_bad_input_one_line_and_nonzero(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "mnistlab", *args], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_train_flags_are_settings_and_reach_the_config():
    from dataclasses import fields

    from mnistlab.cli import TRAIN_FLAGS, _train_overrides, build_parser
    from mnistlab.settings import TrainConfig
    from mnistlab.training import build_config

    assert set(TRAIN_FLAGS) <= {f.name for f in fields(TrainConfig)}
    args = build_parser().parse_args(["train", "--last-batch", "scaled", "--optimizer", "adam", "--set", "epochs=2"])
    assert _train_overrides(args) == {"last_batch": "scaled", "optimizer": "adam", "epochs": 2}
    config = build_config(None, _train_overrides(args))
    assert (config.last_batch, config.optimizer, config.epochs) == ("scaled", "adam", 2)
    bad = run_cli("train", "--last-batch", "half")
    assert bad.returncode == 2 and "invalid choice: 'half'" in bad.stderr


def test_print_settings_shows_what_would_run_and_reads_back(tmp_path, capsys):
    from mnistlab.recipes import load_recipe
    from mnistlab.training import build_config

    assert main(["train", "--recipe", "fast", "--epochs", "2", "--runs-dir", str(tmp_path), "--print-settings"]) == 0
    printed = capsys.readouterr().out
    assert 'model = "fastnet"' in printed and "epochs = 2" in printed and "\n[augment]\n" in printed
    assert not any(tmp_path.iterdir())  # nothing trained, no run folder
    (tmp_path / "settings.toml").write_text(printed)
    assert build_config(tmp_path / "settings.toml") == load_recipe("fast").config(overrides={"epochs": 2})


def test_every_setting_is_a_flag_with_its_help():
    from dataclasses import fields

    from mnistlab.cli import _train_overrides, build_parser
    from mnistlab.settings import CLI_GROUPS, TrainConfig

    for f in fields(TrainConfig):
        assert f.metadata["help"] and f.metadata["group"] in CLI_GROUPS, f.name
    args = build_parser().parse_args(["train", "--min-delta", "0.01", "--no-restore-best", "-o", "hidden=[64]",
                                      "-o", "dropout=0.1", "--augment", "rotate=5,zoom=0.1", "--data-dir", "d"])
    assert _train_overrides(args) == {"min_delta": 0.01, "restore_best": False, "data_dir": "d",
                                      "model_options": {"hidden": [64], "dropout": 0.1},
                                      "augment": {"rotate": 5, "zoom": 0.1}}


def test_train_json_and_resume_flags(tmp_path, capsys):
    import json

    args = ["train", "--model", "linear", "--subset", "600", "--epochs", "1", "--no-tensorboard", "--no-tta",
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(args) == 0
    assert "(1 epoch, " in capsys.readouterr().out  # the line a user reads last
    assert main([*args, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["state"] == "finished" and printed["metrics"]["epochs"] == 1
    run = printed["run"]
    assert main(["train", "--resume", run, "--epochs", "2", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["epochs"] == 2
    assert main(["train", "--resume", run, "--epochs", "3", "--lr", "0.5"]) == 2
    assert "lr cannot change when a run is resumed" in capsys.readouterr().err
    assert main(["train", "--resume", run, "--recipe", "fast"]) == 2


def test_train_not_tested_ends_with_its_validation(tmp_path, capsys):
    args = ["train", "--model", "linear", "--subset", "600", "--epochs", "1", "--no-tensorboard", "--no-tta",
            "--runs-dir", str(tmp_path), "--quiet", "--no-test"]
    assert main(args) == 0
    assert "not tested; best validation accuracy 0." in capsys.readouterr().out
    assert main([*args, "--validation", "none"]) == 0
    assert "not tested, no validation split (1 epoch, " in capsys.readouterr().out
