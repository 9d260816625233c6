"""Damaged and hostile checkpoints: the description beside the weights decides nothing before it is checked
against the weights' header, loading runs no code, and each problem is one clear error."""

import json
import os
import pickle

import pytest
from hostile import peak_memory

import mnistlab
from mnistlab.errors import MnistlabError
from mnistlab.models import create_model
from mnistlab.models.io import save_model


@pytest.fixture
def checkpoint(tmp_path):
    path = save_model(create_model("mlp", hidden=[16]), tmp_path / "best", dataset="mnist",
                      class_names=[str(i) for i in range(10)])
    mnistlab.load(path)  # the modules a load imports, imported before memory is measured
    return path, json.loads(path.with_suffix(".json").read_text())


def rewrite(path, meta):
    path.with_suffix(".json").write_text(json.dumps(meta))


@pytest.mark.parametrize("change, message", [
    (lambda m: m["model"]["options"].update(hidden=[1_000_000, 1000]), r"weights do not fit model 'mlp' as described"),
    (lambda m: m["model"].update(image_shape=[100_000, 100_000]), "weights do not fit model 'mlp' as described"),
    (lambda m: m["model"].pop("num_classes"), "the model description lacks num_classes"),
    (lambda m: m.update(model="mlp"), "the model description is str, not a table"),
    (lambda m: m["model"].update(image_shape=[28, -3]), "the model description is damaged"),
    (lambda m: m["model"].update(name="gpt-7"), "unknown model 'gpt-7'"),
    (lambda m: m["model"]["options"].update(hidden="many"), "does not build a model"),
    (lambda m: m.update(class_names=["zero", "one"]), "class_names must be 10 names"),
])
def test_a_damaged_description_is_one_clear_error_before_anything_large(checkpoint, change, message):
    path, meta = checkpoint
    change(meta)
    rewrite(path, meta)
    with peak_memory(32 * 2**20), pytest.raises(MnistlabError, match=message):
        mnistlab.load(path)


def test_a_description_that_is_not_text_is_a_clear_error(checkpoint):
    path, _ = checkpoint
    path.with_suffix(".json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MnistlabError, match="best.json: not valid JSON"):
        mnistlab.load(path)


def test_damaged_weights_are_a_clear_error(checkpoint):
    path, _ = checkpoint
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MnistlabError, match="corrupt weights file"):
        mnistlab.load(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(MnistlabError, match="corrupt weights file"):
        mnistlab.load(path)


class Payload:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_a_pickled_payload_in_a_training_state_never_runs(tmp_path, monkeypatch):
    from mnistlab.training import build_config, resume, train

    monkeypatch.chdir(tmp_path)
    run = train(build_config(overrides={"model": "linear", "subset": 600, "epochs": 1, "tensorboard": False,
                                        "tta": False}), tmp_path / "runs", progress="quiet")
    run.set_state("interrupted")
    run.last_state.write_bytes(pickle.dumps({"epoch": Payload()}))
    with pytest.raises(MnistlabError) as error:
        resume(run.path, progress="quiet")
    assert not (tmp_path / "pwned").exists()
    message = str(error.value)
    assert "unreadable training state" in message and "weights_only" not in message and "\n" not in message
