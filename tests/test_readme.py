"""The README's Python example runs as written (only shortened: one epoch on a subset)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, fashion):
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
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
