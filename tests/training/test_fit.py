"""`mnistlab.fit`: your own module on your own arrays, trained, saved, reloaded, resumed and fine-tuned like
any run; and `mnistlab train --model file.py:function` from the command line. Real MNIST, small subsets."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import mnistlab
from mnistlab.errors import ConfigError, DataError, MnistlabError
from mnistlab.runs import RunFolder
from mnistlab.training import resume

QUIET = dict(progress="quiet", tensorboard=False, tta=False)


class SmallCNN(nn.Module):
    """What a tutorial's reader writes: a few conv layers, for inputs that are normalized for it."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


@pytest.fixture(scope="module")
def arrays(mnist):
    return (mnist.train_images[:6000], mnist.train_labels[:6000], mnist.test_images[:2000], mnist.test_labels[:2000])


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, arrays):
    x, y, x_test, y_test = arrays
    torch.manual_seed(0)
    run = mnistlab.fit(SmallCNN(), (x[:5000], y[:5000]), validation_data=(x[5000:], y[5000:]),
                       test_data=(x_test, y_test), epochs=4, early_stopping=2,
                       runs_dir=tmp_path_factory.mktemp("fit"), **QUIET)
    return run


def test_your_module_on_numpy_arrays_becomes_a_run(cnn_run, arrays):
    x, y, x_test, y_test = arrays
    assert cnn_run.name == "arrays-SmallCNN-1" and cnn_run.state() == "finished"
    settings = cnn_run.settings()
    assert settings["model"] == "test_fit:SmallCNN" or settings["model"].endswith(":SmallCNN")
    assert settings["validation"] == "given" and settings["optimizer"] == "adam"  # your model's defaults
    assert settings["dataset"] == str(cnn_run.data_path.resolve())  # the arrays, kept in the run folder
    metrics = cnn_run.metrics()
    assert metrics["test_accuracy"] > 0.92, metrics  # a real CNN on 5,000 real digits
    assert len(cnn_run.history()) == 4 and cnn_run.history()[-1]["val_accuracy"] > 0.92
    assert (cnn_run.path / "curves.png").is_file() and (cnn_run.path / "confusion.png").is_file()
    # reloaded with the module passed: the same predictions as the run's own test figure
    predictor = mnistlab.load(cnn_run, model=SmallCNN())
    accuracy = float((predictor.predict(x_test) == y_test).mean())
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    with pytest.raises(MnistlabError, match="its model is your own .*model=SmallCNN\\(\\)|--model"):
        mnistlab.load(cnn_run)
    evaluation = mnistlab.evaluate(cnn_run, x_test, y_test, model=SmallCNN())
    assert evaluation["accuracy"] == pytest.approx(accuracy) and "accuracy" in str(evaluation)
    assert "confusion matrix" in evaluation._repr_html_() and "image/png" in evaluation._repr_html_()
    on_its_test = mnistlab.evaluate(cnn_run, model=SmallCNN())  # the run's own data, from its data.npz
    assert on_its_test["accuracy"] == pytest.approx(accuracy) and on_its_test["count"] == 2000


def test_an_arrays_run_resumes_from_its_own_data(cnn_run, tmp_path):
    import shutil

    moved = RunFolder(shutil.copytree(cnn_run.path, tmp_path / "moved"))  # its data travel with it
    resume(moved.path, progress="quiet", changes={"epochs": 5}, model=SmallCNN())
    assert moved.state() == "finished" and [r["epoch"] for r in moved.history()] == [1, 2, 3, 4, 5]


def test_figures_helpers_return_figures(cnn_run, arrays):
    import matplotlib

    backend = matplotlib.get_backend()
    x, y, x_test, y_test = arrays
    predictor = mnistlab.load(cnn_run, model=SmallCNN())
    for figure in (mnistlab.show_predictions(predictor, x_test[:6], y_test[:6]), mnistlab.show_curves(cnn_run),
                   mnistlab.show_samples(x[:9], y[:9]), mnistlab.show_samples("mnist", count=4)):
        assert hasattr(figure, "savefig") and figure._repr_png_()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend


def test_validation_split_zoo_names_and_no_test_set(tmp_path, arrays):
    x, y, _, _ = arrays
    run = mnistlab.fit("linear", (x[:2000].reshape(-1, 784), y[:2000]), validation_split=0.2, epochs=1,
                       runs_dir=tmp_path, lr=0.05, optimizer="sgd", **QUIET)
    settings, metrics = run.settings(), run.metrics()
    assert settings["validation"] == "last" and settings["val_split"] == 0.2 and settings["model"] == "linear"
    assert "test_accuracy" not in metrics and metrics["best_val_accuracy"] > 0.7
    assert (run.path / "confusion-val.png").is_file() and not (run.path / "confusion.png").exists()
    by_name = mnistlab.fit("linear", "mnist", subset=2000, epochs=1, runs_dir=tmp_path, normalize="scale", **QUIET)
    assert by_name.name == "mnist-linear-1" and not by_name.data_path.exists()
    assert by_name.settings()["model_options"] == {"normalize": "scale"}


def test_bad_fits_fail_before_a_run_folder(tmp_path, arrays):
    x, y, _, _ = arrays
    with pytest.raises(DataError, match="999 labels for 1,000 images"):
        mnistlab.fit(SmallCNN(), (x[:1000], y[:999]), runs_dir=tmp_path, **QUIET)
    with pytest.raises(DataError, match="label 10 is out of range"):
        mnistlab.fit(SmallCNN(), (x[:100], np.full(100, 10)), class_names=list("abcdefghij"), runs_dir=tmp_path,
                     **QUIET)
    with pytest.raises(ConfigError, match="validation_data, test_data and class_names go with arrays"):
        mnistlab.fit(SmallCNN(), "mnist", validation_data=(x, y), runs_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="the dataset 'arrays' has its own"):
        from mnistlab.data import Dataset

        mnistlab.fit(SmallCNN(), Dataset.from_arrays((x[:100], y[:100])), test_data=(x, y), runs_dir=tmp_path,
                     **QUIET)
    with pytest.raises(ConfigError, match="not both"):
        mnistlab.fit(SmallCNN(), (x, y), validation_data=(x, y), validation_split=0.1, runs_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match=r"maps a batch of shape \(2, 1, 28, 28\) to \(2, 5\)"):
        mnistlab.fit(SmallCNN(classes=5), (x[:100], y[:100]), runs_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="unknown setting 'epoch'"):
        mnistlab.fit(SmallCNN(), (x[:100], y[:100]), epoch=3, runs_dir=tmp_path, **QUIET)
    with pytest.raises(ConfigError, match="model must be a zoo name, a reference"):
        mnistlab.fit(42, (x[:100], y[:100]), runs_dir=tmp_path, **QUIET)
    assert not any(tmp_path.iterdir())


MYNET = textwrap.dedent("""
    from torch import nn

    def build(num_classes, width: int = 8):
        return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(width * 14 * 14, num_classes))
""")


def _mnistlab(*args, cwd):
    done = subprocess.run([sys.executable, "-m", "mnistlab", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_command_line_trains_and_ships_a_model_from_your_file(tmp_path, mnist):
    (tmp_path / "mynet.py").write_text(MYNET)
    shown = _mnistlab("models", "show", "mynet.py:build", "-o", "width=4", cwd=tmp_path)
    assert "Total params: 7,890" in shown and "optimizer = adam" in shown
    out = json.loads(_mnistlab("train", "--model", "mynet.py:build", "-o", "width=4", "--subset", "3000",
                               "--epochs", "2", "--no-tensorboard", "--no-tta", "--json", "-q", cwd=tmp_path))
    run = tmp_path / out["run"]
    assert out["run"] == "runs/mnist-mynet-1" and out["metrics"]["test_accuracy"] > 0.8
    np.save(tmp_path / "digits.npy", mnist.test_images[:5])
    failed = subprocess.run([sys.executable, "-m", "mnistlab", "predict", str(run), "digits.npy"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "--model mynet.py:build" in failed.stderr
    answers = json.loads(_mnistlab("predict", str(run), "digits.npy", "--model", "mynet.py:build", "--json",
                                   cwd=tmp_path))
    assert [p["class"] for p in answers[0]["predictions"]] == mnist.test_labels[:5].tolist()
    # fine-tuning takes the model (and its code) from the run it starts from
    _mnistlab("train", "--init-from", str(run), "--subset", "3000", "--epochs", "1", "--no-tensorboard", "-q",
              cwd=tmp_path)
    assert json.loads((tmp_path / "runs/mnist-mynet-2/checkpoints/best.json").read_text())["model"] == {
        "name": "mynet.py:build", "num_classes": 10, "image_shape": [28, 28], "options": {"width": 4}}


def test_your_models_runs_ship_like_any_other(cnn_run, arrays, tmp_path):
    from mnistlab.ensemble import create_ensemble, evaluate_ensemble
    from mnistlab.export import export
    from mnistlab.report import write_report

    x, y, x_test, y_test = arrays
    torch.manual_seed(1)
    other = mnistlab.fit(SmallCNN(), (x[:2000], y[:2000]), test_data=(x_test, y_test), epochs=1,
                         runs_dir=tmp_path, **QUIET)
    ensemble = create_ensemble([cnn_run.path, other.path], tmp_path / "both")
    result = evaluate_ensemble(ensemble, model=SmallCNN())  # one instance given, a copy built per member
    assert result["count"] == 2000 and result["members"][0] == pytest.approx(cnn_run.metrics()["test_accuracy"])
    assert result["members"][0] != result["members"][1]
    predictor = mnistlab.load(cnn_run, model=SmallCNN())
    exported = export(predictor, "safetensors", tmp_path / "cnn.safetensors")
    again = mnistlab.load(exported, model=SmallCNN())
    np.testing.assert_array_equal(again.predict_proba(x_test[:50]), predictor.predict_proba(x_test[:50]))
    onnx = pytest.importorskip("onnxruntime")
    session = onnx.InferenceSession(str(export(predictor, "onnx", tmp_path / "cnn.onnx")))
    logits = session.run(None, {session.get_inputs()[0].name: x_test[:8, None].astype(np.float32)})[0]
    assert (logits.argmax(1) == predictor.predict(x_test[:8])).all()
    report = write_report(cnn_run.path, tmp_path / "report.html", model=SmallCNN())
    assert "test accuracy" in report.read_text()


def test_your_module_is_trained_in_place_as_in_keras(arrays, tmp_path):
    x, y, _, _ = arrays
    net = SmallCNN()
    before = net.head.weight.detach().clone()
    run = mnistlab.fit(net, (x[:1000], y[:1000]), epochs=1, runs_dir=tmp_path, **QUIET)
    saved = mnistlab.load(run, model=SmallCNN()).models[0].net
    assert not torch.equal(net.head.weight, before)
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value, rtol=0, atol=0)
