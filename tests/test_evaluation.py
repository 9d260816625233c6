import json
import re

import numpy as np
import pytest
import torch

import mnistlab
from mnistlab.cli import main
from mnistlab.models.inference import tta_logits


def test_evaluate_a_run_from_the_command_line(mnist_runs, capsys, tmp_path):
    run = mnist_runs[0]
    assert main(["evaluate", str(run.path), "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(run.metrics()["test_accuracy"], abs=1e-6)
    assert np.array(result["confusion_matrix"]).sum() == 10000 and len(result["per_class"]) == 10
    assert (tmp_path / "confusion.png").is_file() and (tmp_path / "mistakes.png").is_file()
    # --tta gives what training reported with test-time augmentation (memory formats differ: one image at most)
    assert main(["evaluate", str(run.path), "--tta", "--json", "--out", str(tmp_path)]) == 0
    with_tta = json.loads(capsys.readouterr().out)
    assert with_tta["accuracy"] == pytest.approx(run.metrics()["test_accuracy_tta"], abs=1e-4)
    assert main(["evaluate", str(run.path), "--split", "val", "--json", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2000  # 10% of the 20,000-image subset
    assert main(["evaluate", str(run.path), "--split", "val"]) == 0
    assert "confusion matrix (rows: true, columns: predicted)" in capsys.readouterr().out


def test_evaluate_on_real_handwriting_from_outside_mnist(mnist_runs, fashion_run, capsys, tmp_path):
    """A model trained on MNIST reads uci-digits (other writers, other scanning) far above chance, less well
    than MNIST's test set: the set is brought to MNIST's form (a broken conversion would read at ~10%)."""
    run = mnist_runs[0]
    assert main(["evaluate", str(run.path), "--dataset", "uci-digits", "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 1797 and 0.6 < result["accuracy"] < run.metrics()["test_accuracy"]
    assert 0 < result["ece"] < 1 and (tmp_path / "mistakes.png").is_file()
    assert main(["evaluate", str(run.path), "--dataset", "uci-digits"]) == 0
    assert "calibration error (ECE)" in capsys.readouterr().out
    for args, why in ((["--split", "val"], "the run's own held-out data"), (["--split", "train"], "no training split")):
        assert main(["evaluate", str(run.path), "--dataset", "uci-digits", *args]) == 2
        assert why in capsys.readouterr().err
    assert main(["evaluate", str(fashion_run.path), "--dataset", "uci-digits"]) == 2
    assert "evaluate it on a dataset of its own classes" in capsys.readouterr().err


def test_fashion_evaluation_uses_class_names(fashion_run, capsys):
    assert main(["evaluate", str(fashion_run.path)]) == 0
    out = capsys.readouterr().out
    assert "Ankle boot" in out and "T-shirt/top" in out
    assert fashion_run.metrics()["test_accuracy"] > 0.8


def test_reload_gives_identical_predictions(mnist_runs, mnist):
    predictor = mnistlab.load(mnist_runs[0].path)
    a = predictor.predict_proba(mnist.test_images[:500])
    b = mnistlab.load(mnist_runs[0].checkpoint("best")).predict_proba(mnist.test_images[:500].reshape(500, 784))
    assert np.array_equal(a, b) and a.shape == (500, 10) and np.allclose(a.sum(1), 1, atol=1e-5)
    assert (predictor.predict(mnist.test_images[:500].astype(np.float32)) == a.argmax(1)).all()


def test_plot_runs_overlaid(mnist_runs, tmp_path):
    out = tmp_path / "curves.png"
    assert main(["plot", str(mnist_runs[0].path), str(mnist_runs[1].path), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_ensemble_is_evaluated_and_loads_like_a_run(mnist_runs, mnist, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", *(str(r.path) for r in mnist_runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("member ") == 2 and "ensemble of 2: test accuracy" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= min(metrics["member_test_accuracy"])
    predictor = mnistlab.load(out)
    members = [mnistlab.load(r.path).predict_proba(mnist.test_images[:100]) for r in mnist_runs]
    assert np.allclose(predictor.predict_proba(mnist.test_images[:100]), np.mean(members, axis=0), atol=1e-6)
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert main(["ensemble", str(mnist_runs[0].path)]) == 2


def test_ensembles_by_run_name_are_numbered_and_runs_count_once(mnist_runs, tmp_path, capsys):
    from mnistlab.ensemble import create_ensemble

    runs_dir = mnist_runs[0].path.parent
    names = [r.path.name for r in mnist_runs]
    first, second = (create_ensemble(names, runs_dir=runs_dir) for _ in range(2))
    assert (first.name, second.name) == ("ensemble-1", "ensemble-2") and first.parent == runs_dir
    assert (second / "ensemble.json").is_file()
    from mnistlab.runs import list_runs

    rows = {r["name"]: r for r in list_runs(runs_dir)}
    assert rows["ensemble-1"]["state"] == "ensemble" and rows["ensemble-1"]["model"] == "2 x keras-cnn"
    assert main(["runs", "--runs-dir", str(runs_dir)]) == 0
    assert re.search(r"\nensemble-2 +mnist +2 x keras-cnn +- +- +- +- +- +ensemble\n", capsys.readouterr().out)
    assert main(["ensemble", names[0], str(mnist_runs[0].path), "--runs-dir", str(runs_dir),
                 "--out", str(tmp_path / "twice")]) == 2
    assert "is given twice" in capsys.readouterr().err and not (tmp_path / "twice").exists()


def test_report_is_self_contained_and_renders(mnist_runs, tmp_path):
    import shutil
    import subprocess

    out = tmp_path / "report.html"
    assert main(["report", str(mnist_runs[0].path), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 3 and "keras-cnn" in text and "src=\"http" not in text
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium is not installed (.ci/run installs it)")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}/u",
                    f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2400, 1200) and pixels.std() > 20  # text and figures, not a blank page


def test_report_of_a_run_not_tested_is_of_its_validation_split(tmp_path):
    assert main(["train", "--model", "linear", "--subset", "600", "--epochs", "1", "--no-tensorboard", "--no-tta",
                 "--no-test", "--runs-dir", str(tmp_path), "--name", "untested", "--quiet"]) == 0
    run = tmp_path / "untested-1"
    assert main(["report", str(run)]) == 0
    text = (run / "report.html").read_text()
    assert "validation accuracy" in text and "Confusion matrix (validation)" in text and "test accuracy" not in text
    supports = re.findall(r"<td>(\d+)</td></tr>", text.split("Per-class metrics")[1].split("</table>")[0])
    assert sum(map(int, supports)) == 60  # the held-out tenth of the 600 images trained on
    assert main(["report", str(run), "--split", "test", "--out", str(tmp_path / "t.html")]) == 0
    assert "Confusion matrix (test)" in (tmp_path / "t.html").read_text()


def test_report_of_an_ensemble_names_its_members(mnist_runs, tmp_path):
    ens = tmp_path / "ens"
    assert main(["ensemble", *(str(r.path) for r in mnist_runs), "--out", str(ens)]) == 0
    assert main(["report", str(ens)]) == 0
    text = (ens / "report.html").read_text()
    metrics = json.loads((ens / "metrics.json").read_text())
    assert f"<b>{metrics['test_accuracy']:.4f}</b>test accuracy" in text
    for run, accuracy in zip(mnist_runs, metrics["member_test_accuracy"]):
        assert f"<td>{run.path}</td><td>keras-cnn</td><td>{accuracy:.4f}</td>" in text
    assert text.count("data:image/png;base64,") == 3  # the members' curves, confusion matrix, mistakes


def test_tta_adds_mirrors_only_for_models_trained_with_them(fashion_run, mnist_runs, fashion, capsys):
    # the checkpoint says the model learnt mirrored clothes; digits were never mirrored
    assert mnistlab.load(fashion_run.path).tta_mirror == (True,)
    assert mnistlab.load(mnist_runs[0].path).tta_mirror == (False,)
    # a reloaded model's TTA is the one training reported (memory formats differ: one image at most)
    assert main(["evaluate", str(fashion_run.path), "--tta", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(fashion_run.metrics()["test_accuracy_tta"], abs=1e-4)
    # the views are closed under mirroring, so a mirrored image gets the same prediction
    model = mnistlab.load(fashion_run.path).models[0]
    images = torch.as_tensor(fashion.test_images[:200])
    mirrored = tta_logits(model, images.flip(-1), mirror=True)
    assert torch.allclose(tta_logits(model, images, mirror=True), mirrored, atol=1e-4)
    assert not torch.allclose(tta_logits(model, images), tta_logits(model, images.flip(-1)), atol=1e-4)
