"""A dataset of one's own pictures in class folders: read once through predict's preprocessing, cached,
trained on, predicted; bad folders and pictures get clear errors."""

import shutil

import numpy as np
import pytest
from PIL import Image

from mnistlab.cli import main
from mnistlab.data import load_dataset
from mnistlab.data.folders import CACHE_FILE
from mnistlab.errors import DataError

NAMES = ["zero", "one", "two"]


def handwriting(folder, mnist, split="train", per_class=60, start=0):
    """Digits 0-2 of MNIST as dark ink on white paper, larger and off-centre, as a phone would take them."""
    counts = dict.fromkeys(range(3), 0)
    for i in range(start, len(mnist.train_images)):
        label = int(mnist.train_labels[i])
        if label > 2 or counts[label] >= per_class:
            continue
        counts[label] += 1
        page = Image.new("L", (70, 60), 255)
        page.paste(Image.fromarray(255 - mnist.train_images[i]).resize((42, 42)), (5 + i % 20, 9))
        (folder / split / NAMES[label]).mkdir(parents=True, exist_ok=True)
        page.save(folder / split / NAMES[label] / f"{i}.png")
        if all(c >= per_class for c in counts.values()):
            break


def test_class_folders_train_and_predict(tmp_path, mnist, capsys):
    folder = tmp_path / "my-digits"
    handwriting(folder, mnist)
    handwriting(folder, mnist, "test", per_class=20, start=40000)
    data = load_dataset(folder)
    assert data.class_names == ("one", "two", "zero") and data.train_images.shape == (180, 28, 28)
    assert len(data.test_images) == 60 and (folder / CACHE_FILE).is_file()
    again = load_dataset(folder)  # from the cache
    assert np.array_equal(again.train_images, data.train_images)
    assert main(["data", "info", str(folder)]) == 0 and "zero" in capsys.readouterr().out
    runs = tmp_path / "runs"
    assert main(["train", "--dataset", str(folder), "--model", "keras-cnn", "--epochs", "6", "--batch-size", "32",
                 "--optimizer", "adam", "--lr", "0.002", "--runs-dir", str(runs), "--quiet", "--no-tensorboard"]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.85, out  # three classes of real handwriting, 180 pictures
    run = next(runs.iterdir())
    picture = next((folder / "test" / "two").iterdir())
    assert main(["predict", str(run), str(picture), "--json"]) == 0
    assert '"name": "two"' in capsys.readouterr().out


def test_without_a_test_folder_a_tenth_of_train_is_held_out(tmp_path, mnist):
    handwriting(tmp_path, mnist, per_class=20)
    data = load_dataset(tmp_path)
    assert (len(data.train_images), len(data.test_images)) == (54, 6)


def test_a_changed_picture_refreshes_the_cache_and_a_bad_one_is_named(tmp_path, mnist):
    handwriting(tmp_path, mnist, per_class=10)
    first = load_dataset(tmp_path)
    (tmp_path / "train" / "one" / "broken.png").write_bytes(b"not a picture")
    with pytest.warns(UserWarning, match=r"1 picture\(s\) .* could not be read and are left out: .*broken.png"):
        second = load_dataset(tmp_path)
    assert len(second.train_images) + len(second.test_images) == len(first.train_images) + len(first.test_images)


def test_an_empty_class_folder_is_a_clear_error(tmp_path, mnist):
    handwriting(tmp_path, mnist, per_class=5)
    shutil.rmtree(tmp_path / "train" / "two")
    (tmp_path / "train" / "two").mkdir()
    with pytest.raises(DataError, match=r"train/two: the class folder holds no pictures"):
        load_dataset(tmp_path)
