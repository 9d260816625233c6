import json

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.data.idx import encode_idx
from mnistlab.data.inputs import preprocess_digit
from mnistlab.errors import DataError


def redraw(digit: np.ndarray, size=(90, 70), box=(50, 40), offset=(8, 15), rgb=True) -> Image.Image:
    """An MNIST digit as dark ink on white paper, bigger and elsewhere on the page."""
    ink = Image.fromarray(255 - digit).resize(box, Image.BICUBIC)
    page = Image.new("L", size, 255)
    page.paste(ink, offset)
    return page.convert("RGB") if rgb else page


def test_preprocess_recovers_an_mnist_layout(mnist):
    digit = mnist.test_images[0]
    back = preprocess_digit(np.asarray(redraw(digit, rgb=False)))
    assert back.shape == (28, 28) and back.dtype == np.uint8
    ys, xs = np.nonzero(back > 50)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) <= 21  # fits the 20x20 box
    com = np.array([(back.sum(1) * np.arange(28)).sum(), (back.sum(0) * np.arange(28)).sum()]) / back.sum()
    assert np.abs(com - 13.5).max() <= 1.0
    with pytest.raises(DataError, match="blank"):
        preprocess_digit(np.full((40, 40), 255, np.uint8))


def test_predict_redrawn_test_digits(mnist_runs, mnist, tmp_path, capsys):
    files = []
    for i in range(20):
        path = tmp_path / f"digit{i}.{('png', 'jpg', 'bmp')[i % 3]}"
        redraw(mnist.test_images[i], size=(60 + 3 * i, 80), offset=(i % 7, 10)).save(path)
        files.append(str(path))
    assert main(["predict", str(mnist_runs[0].path), *files, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    predicted = [r["predictions"][0]["class"] for r in results]
    correct = sum(p == t for p, t in zip(predicted, mnist.test_labels[:20]))
    assert correct >= 18, (predicted, mnist.test_labels[:20].tolist())
    top = results[0]["predictions"][0]["top"]
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"]


def test_arrays_and_idx_files_are_predicted_as_they_are(mnist_runs, mnist, tmp_path, capsys):
    import mnistlab

    np.save(tmp_path / "batch.npy", mnist.test_images[:5])
    (tmp_path / "t-idx3-ubyte").write_bytes(encode_idx(mnist.test_images[5:8]))
    assert main(["predict", str(mnist_runs[0].path), str(tmp_path / "batch.npy"), str(tmp_path / "t-idx3-ubyte"),
                 "--json", "--top-k", "1"]) == 0
    results = json.loads(capsys.readouterr().out)
    got = [p["class"] for r in results for p in r["predictions"]]
    assert got == mnistlab.load(mnist_runs[0].path).predict(mnist.test_images[:8]).tolist()
    # --tta: the probabilities of the image and its shifts, as Predictor.predict_proba(tta=True) gives them
    assert main(["predict", str(mnist_runs[0].path), str(tmp_path / "batch.npy"), "--json", "--tta"]) == 0
    shifted = [p["probability"] for p in json.loads(capsys.readouterr().out)[0]["predictions"]]
    proba = mnistlab.load(mnist_runs[0].path).predict_proba(mnist.test_images[:5], tta=True)
    assert shifted == pytest.approx(proba.max(axis=1).tolist(), abs=1e-6)
    assert shifted != pytest.approx([p["probability"] for p in results[0]["predictions"]], abs=1e-6)


def test_bad_files_get_an_error_and_the_rest_are_predicted(mnist_runs, mnist, tmp_path, capsys):
    good = tmp_path / "good.png"
    redraw(mnist.test_images[0]).save(good)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "notes.txt").write_text("hello")
    Image.new("L", (30, 30), 255).save(tmp_path / "blank.png")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5)))
    args = ["predict", str(mnist_runs[0].path), str(good), str(tmp_path / "broken.png"), str(tmp_path / "notes.txt"),
            str(tmp_path / "blank.png"), str(tmp_path / "wrong.npy"), str(tmp_path / "missing.png")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{good}: 7 (")
    errors = captured.err.strip().splitlines()
    assert len(errors) == 5 and all(line.startswith("mnistlab: error: ") for line in errors)
    assert "not a readable image" in errors[0] and "unknown file type" in errors[1] and "blank" in errors[2]
    assert "not a batch of 28x28 images" in errors[3] and "file not found" in errors[4]


def test_no_preprocess_needs_the_model_size(mnist_runs, mnist, tmp_path, capsys):
    Image.fromarray(mnist.test_images[0]).save(tmp_path / "raw.png")
    redraw(mnist.test_images[0]).save(tmp_path / "big.png")
    with pytest.raises(SystemExit):
        main(["predict", str(mnist_runs[0].path), str(tmp_path / "raw.png"), str(tmp_path / "big.png"),
              "--no-preprocess"])
    captured = capsys.readouterr()
    assert "raw.png: 7" in captured.out and "drop --no-preprocess" in captured.err


def test_a_folder_stands_for_the_files_in_it(mnist_runs, mnist, tmp_path, capsys):
    import mnistlab

    folder, empty = tmp_path / "digits", tmp_path / "empty"
    folder.mkdir(), empty.mkdir()
    for i in range(3):
        redraw(mnist.test_images[i]).save(folder / f"{i}.png")
    np.save(folder / "3.npy", mnist.test_images[3:5])
    (folder / "notes.txt").write_text("not an input, skipped")
    (folder / ".hidden.png").write_bytes(b"skipped too")
    (empty / "readme.md").write_text("no inputs here")
    with pytest.raises(SystemExit):
        main(["predict", str(mnist_runs[0].path), str(folder), str(empty), "--json"])
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert [r["file"] for r in results] == [str(folder / n) for n in ("0.png", "1.png", "2.png", "3.npy")] + [
        str(empty)]
    assert [len(r["predictions"]) for r in results[:4]] == [1, 1, 1, 2]
    assert [p["class"] for p in results[3]["predictions"]] == mnistlab.load(mnist_runs[0].path).predict(
        mnist.test_images[3:5]).tolist()
    assert "empty: the folder holds no PNG, JPEG, BMP, .npy or IDX files" in results[4]["error"]


def test_top_k_must_be_positive(mnist_runs, mnist, tmp_path, capsys):
    np.save(tmp_path / "one.npy", mnist.test_images[:1])
    assert main(["predict", str(mnist_runs[0].path), str(tmp_path / "one.npy"), "--top-k", "0"]) == 2
    assert "top_k must be at least 1, got 0" in capsys.readouterr().err


def test_predict_out_draws_what_the_model_saw_with_its_answers(mnist_runs, mnist, tmp_path, capsys):
    from matplotlib.figure import Figure

    from mnistlab import plots

    files = []
    for i in range(3):
        files.append(tmp_path / f"digit{i}.png")
        redraw(mnist.test_images[i]).save(files[-1])
    np.save(tmp_path / "two.npy", mnist.test_images[3:5])
    out = tmp_path / "answers.png"
    assert main(["predict", str(mnist_runs[0].path), *map(str, files), str(tmp_path / "two.npy"), "--out", str(out),
                 "--json"]) == 0
    results = json.loads(capsys.readouterr().out)  # the JSON holds no images
    assert len(results) == 4 and "images" not in results[0]
    assert out.read_bytes()[:4] == b"\x89PNG"
    # from Python: the same figure, here without a file
    import mnistlab

    predictor = mnistlab.load(mnist_runs[0].path)
    images = mnist.test_images[:150]
    fig = plots.prediction_grid(images, predictor.describe(images))
    assert isinstance(fig, Figure) and "the first 100 of 150" in fig.texts[0].get_text()
