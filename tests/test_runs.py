import pytest

from mnistlab.errors import MnistlabError
from mnistlab.runs import EnsembleFolder, RunFolder, figure_path, history_to_csv, read_history_csv, run_folder_of


def test_run_folders_are_numbered_and_name_their_files(tmp_path):
    first, second = RunFolder.create(tmp_path, "mnist-mlp"), RunFolder.create(tmp_path, "mnist-mlp")
    assert (first.name, second.name) == ("mnist-mlp-1", "mnist-mlp-2")
    assert first.checkpoint_path("best") == first.path / "checkpoints" / "best.safetensors"
    assert run_folder_of(first.checkpoint_path("last")) == first.path and run_folder_of(first.path) == first.path
    assert figure_path(first.path, "curves") == first.path / "curves.png"
    with pytest.raises(MnistlabError, match="no best checkpoint yet"):
        first.checkpoint("best")
    with pytest.raises(MnistlabError, match="may only hold letters"):
        RunFolder.create(tmp_path, "../escape")


def test_history_round_trips_through_csv(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": None, "lr": 0.1, "own_metric": 2.0}]
    (tmp_path / "h.csv").write_text(history_to_csv(rows))
    back = read_history_csv(tmp_path / "h.csv")[0]
    assert back["loss"] == 0.5 and back["val_loss"] is None and back["own_metric"] == 2.0


def test_a_damaged_ensemble_description_is_a_clear_error(tmp_path):
    ensemble = EnsembleFolder.create(tmp_path)
    assert ensemble.name == "ensemble-1" and not ensemble.exists()
    (ensemble.path / EnsembleFolder.SPEC).write_text("{not json")
    with pytest.raises(MnistlabError, match="not valid JSON"):
        ensemble.spec()
    (ensemble.path / EnsembleFolder.SPEC).write_text('{"members": "0.safetensors"}')
    with pytest.raises(MnistlabError, match="no list of members"):
        ensemble.members()
