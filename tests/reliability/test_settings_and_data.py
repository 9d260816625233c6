"""Settings that cannot work are refused when built; datasets and run folders that are damaged or left
behind are reported in one line; evaluating one split keeps another's figures."""

import json
import shutil

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import load_dataset
from mnistlab.data.idx import encode_idx
from mnistlab.errors import ConfigError, DataError
from mnistlab.runs import RunFolder, list_runs
from mnistlab.training import build_config, train


@pytest.mark.parametrize("overrides, message", [
    ({"early_stopping": 3, "early_stopping_monitor": "val_los"}, "early_stopping_monitor 'val_los' is not a metric"),
    ({"schedule": "plateau", "plateau_monitor": "foo"}, "plateau_monitor 'foo' is not a metric this run logs"),
    ({"early_stopping": 3, "validation": "none"}, r"'val_loss' is not a metric this run logs \(this run has no"),
    ({"checkpoint_monitor": "val_acc"}, "checkpoint_monitor 'val_acc' is not a metric"),
])
def test_a_monitor_must_be_a_metric_the_run_logs(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=overrides)


def test_the_cli_refuses_a_typo_in_a_monitor_before_training(tmp_path, capsys):
    assert main(["train", "--early-stopping", "2", "--set", "early_stopping_monitor=val_los",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "early_stopping_monitor 'val_los' is not a metric" in capsys.readouterr().err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_an_ema_too_slow_for_the_run_is_announced_with_its_figures(tmp_path, capsys, data_root):
    train(build_config(overrides={"model": "linear", "subset": 3000, "epochs": 1, "ema": 0.999,
                                  "tensorboard": False, "tta": False}), tmp_path, progress="quiet")
    err = capsys.readouterr().err
    assert "warning: ema 0.999 averages over about 1,000 steps, but this run makes 11" in err
    assert "99% of the average is still the initial weights" in err and "choose ema <=" in err


def _dataset_folder(tmp_path, data_root):
    folder = tmp_path / "mine"
    shutil.copytree(data_root / "mnist", folder)
    return folder


def test_a_dataset_whose_files_hold_no_images_is_one_clear_error(tmp_path, data_root):
    folder = _dataset_folder(tmp_path, data_root)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(encode_idx(np.zeros((0, 28, 28), np.uint8)))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(encode_idx(np.zeros(0, np.uint8)))
    with pytest.raises(DataError, match="the test split holds no images"):
        load_dataset(folder)


def test_class_names_that_are_not_utf8_are_one_clear_error(tmp_path, data_root, capsys):
    folder = _dataset_folder(tmp_path, data_root)
    (folder / "classes.txt").write_bytes("zéro\nun\n".encode("latin-1"))
    assert main(["data", "info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "classes.txt: not UTF-8 text" in err and "save it as UTF-8" in err and err.count("\n") == 1


def test_a_killed_run_reads_as_stopped(tmp_path, data_root, capsys):
    run = train(build_config(overrides={"model": "linear", "subset": 600, "epochs": 1, "tensorboard": False,
                                        "tta": False}), tmp_path, progress="quiet")
    run.set_state("running")  # as a kill -9 leaves it...
    status = json.loads((run.path / RunFolder.STATUS).read_text())
    assert {"pid", "host", "heartbeat"} <= set(status)  # the process, and when it last finished an epoch
    (run.path / RunFolder.STATUS).write_text(json.dumps({**status, "pid": 2**22 + 7}))  # ...by a process now gone
    assert run.state() == "stopped" and list_runs(tmp_path)[0]["state"] == "stopped"
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "stopped" in capsys.readouterr().out


def test_evaluating_the_validation_split_keeps_the_test_figures(mnist_runs, capsys):
    run = mnist_runs[0]
    test_figure = (run.path / "confusion.png").read_bytes()
    assert main(["evaluate", str(run.path), "--split", "val"]) == 0
    assert "confusion-val.png" in capsys.readouterr().out
    assert (run.path / "confusion.png").read_bytes() == test_figure and (run.path / "mistakes-val.png").is_file()
