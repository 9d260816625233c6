import json

import numpy as np
import pytest
import torch

import mnistlab
from mnistlab.cli import main


@pytest.fixture(scope="module")
def test_images(mnist):
    return mnist.test_images[:300]


def _reference(path, images):
    return mnistlab.load(path).predict_proba(images)


def _check(expected, got):
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_onnx_matches_mnistlab(mnist_runs, test_images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "exports" / "model.onnx"  # a folder that does not exist yet
    assert main(["export", str(mnist_runs[0].path), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = test_images.astype(np.float32)[:, None]
    for batch in (x, x[:7], x[:1]):  # dynamic batch size
        (got,) = session.run(None, {"pixels": batch})
        _check(_reference(mnist_runs[0].path, test_images[: len(batch)]), got)


def test_torchscript_matches_mnistlab_for_an_ensemble(mnist_runs, test_images, tmp_path):
    ens = tmp_path / "ens"
    assert main(["ensemble", *(str(r.path) for r in mnist_runs), "--out", str(ens)]) == 0
    out = tmp_path / "ens.pt"
    assert main(["export", str(ens), "--format", "torchscript", "--out", str(out)]) == 0
    module = torch.jit.load(str(out))
    with torch.no_grad():
        got = module(torch.from_numpy(test_images.astype(np.float32)[:, None])).numpy()
    _check(_reference(ens, test_images), got)


def test_safetensors_export_loads_back_on_its_own(mnist_runs, test_images, tmp_path, capsys):
    """The export's header says how to rebuild it: mnistlab.load, predict and evaluate take the file alone."""
    from safetensors import safe_open

    ens = tmp_path / "ens"
    assert main(["ensemble", *(str(r.path) for r in mnist_runs), "--out", str(ens)]) == 0
    for source, out in ((mnist_runs[0].path, tmp_path / "one" / "w.safetensors"), (ens, tmp_path / "ens.safetensors")):
        assert main(["export", str(source), "--format", "safetensors", "--out", str(out)]) == 0
        with safe_open(str(out), "pt") as f:
            assert "keras-cnn" in f.metadata()["models"] and f.metadata()["dataset"] == "mnist"
            # the runs are calibrated: without their temperatures the probabilities below would differ
            temperatures = [m.temperature for m in mnistlab.load(source).models]
            assert json.loads(f.metadata()["temperatures"]) == temperatures and 1.0 not in temperatures
        loaded = mnistlab.load(out)
        assert len(loaded.models) == len(mnistlab.load(source).models)
        assert repr(loaded) == repr(mnistlab.load(source)).split(" from ")[0] + f" from {out})"
        np.testing.assert_array_equal(loaded.predict_proba(test_images), _reference(source, test_images))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "one" / "w.safetensors"), "--out", str(tmp_path / "figures")]) == 0
    assert "on mnist test" in capsys.readouterr().out and (tmp_path / "figures" / "confusion.png").is_file()
    (tmp_path / "plain.safetensors").write_bytes((tmp_path / "ens.safetensors").read_bytes()[:50])
    assert main(["predict", str(tmp_path / "plain.safetensors"), "x.png"]) == 2
    assert "nor a safetensors file written by mnistlab export" in capsys.readouterr().err


def test_bad_export_arguments(mnist_runs, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    # a folder as --out: a clear error naming a file to give instead, and the folder is left alone
    (tmp_path / "keep.txt").write_text("x")
    assert main(["export", str(mnist_runs[0].path), "--format", "torchscript", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and str(tmp_path / "model.pt") in err
    assert (tmp_path / "keep.txt").read_text() == "x"


def test_onnx_export_of_the_space_to_depth_default_model(test_images, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from mnistlab.models import create_model
    from mnistlab.models.io import save_model

    torch.manual_seed(0)
    model = create_model("fastnet-wide").eval()
    model.normalize.fit(test_images)
    weights = save_model(model, tmp_path / "fastnet.safetensors", dataset="mnist",
                         class_names=[str(i) for i in range(10)])
    out = tmp_path / "fastnet.onnx"
    assert main(["export", str(weights), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"pixels": test_images[:50].astype(np.float32)[:, None]})
    _check(_reference(weights, test_images[:50]), got)


def test_pt2_program_matches_mnistlab_for_an_ensemble(mnist_runs, test_images, tmp_path):
    ens = tmp_path / "ens"
    assert main(["ensemble", *(str(r.path) for r in mnist_runs), "--out", str(ens)]) == 0
    out = tmp_path / "ens.pt2"
    assert main(["export", str(ens), "--format", "pt2", "--out", str(out)]) == 0
    extra = {"mnistlab.json": ""}
    program = torch.export.load(str(out), extra_files=extra)
    assert '"class_names"' in extra["mnistlab.json"]
    x = torch.from_numpy(test_images.astype(np.float32)[:, None])
    for batch in (x, x[:5], x[:1]):  # dynamic batch size
        with torch.no_grad():
            _check(_reference(ens, test_images[: len(batch)]), program.module()(batch).numpy())


def test_onnx_uses_the_current_exporter_and_falls_back_with_a_warning(mnist_runs, test_images, tmp_path,
                                                                     monkeypatch):
    import warnings

    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from mnistlab import export as exporting

    predictor = mnistlab.load(mnist_runs[0].path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: the dynamo exporter did it
        exporting.export(predictor, "onnx", tmp_path / "dynamo.onnx")

    def unsupported(*args, **kwargs):
        raise RuntimeError("an op it cannot translate")

    monkeypatch.setattr(exporting, "_exported_program", unsupported)
    with pytest.warns(UserWarning, match="dynamo ONNX exporter failed .*an op it cannot translate"):
        exporting.export(predictor, "onnx", tmp_path / "legacy.onnx")
    x = test_images.astype(np.float32)[:, None]
    for name in ("dynamo", "legacy"):
        session = ort.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        _check(_reference(mnist_runs[0].path, test_images), session.run(None, {"pixels": x})[0])
