"""The README's Python example runs as written (only shortened: one epoch on a subset)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_own_model_example_runs(tmp_path, monkeypatch, mnist):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    assert "epochs=20" in code
    code = code.replace("epochs=20", "epochs=1")
    monkeypatch.chdir(tmp_path)
    x, y = mnist.train_images, mnist.train_labels
    namespace: dict = {"x_train": x[:3000], "y_train": y[:3000], "x_val": x[3000:3500], "y_val": y[3000:3500],
                       "x_test": mnist.test_images[:500], "y_test": mnist.test_labels[:500]}
    exec(compile(code, str(README), "exec"), namespace)
    run, model = namespace["run"], namespace["model"]
    assert run.state() == "finished" and run.metrics()["test_accuracy"] > 0.8
    accuracy = (model.predict(mnist.test_images[:500]) == mnist.test_labels[:500]).mean()
    assert accuracy == pytest.approx(run.metrics()["test_accuracy"], abs=1e-6)


def test_readme_python_example_runs(tmp_path, monkeypatch, fashion):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    assert '"epochs": 3' in code
    code = code.replace('"epochs": 3', '"epochs": 1, "subset": 3000')
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    run, model = namespace["run"], namespace["model"]
    assert run.path.parent == Path("runs") and (tmp_path / run.path / "checkpoints" / "best.safetensors").is_file()
    assert model.meta["dataset"] == "fashion-mnist" and model.class_names[0] == "T-shirt/top"
    assert model.predict(fashion.test_images[:10]).shape == (10,)
    assert namespace["net"](fashion.test_images[:4]).shape == (4, 10)
