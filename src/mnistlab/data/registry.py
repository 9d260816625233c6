"""The standard datasets by name: their files, class names, download mirrors and published checksums,
and where datasets live on disk."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mnistlab.errors import ConfigError

# The four standard IDX files of every MNIST-family dataset, by split and kind.
STANDARD_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

DATA_ENV_VAR = "MNISTLAB_DATA"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset that can be downloaded: mirrors are tried in turn; sha256 is of each published .gz file."""

    name: str
    description: str
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]
    sha256: dict[str, str]  # standard file name + ".gz" -> hex digest
    subject: str = "one of its classes"  # what one image shows, as a drawing pad asks for it: "Draw a digit"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            description="handwritten digits 0-9 (LeCun, Cortes and Burges)",
            subject="a digit",
            class_names=tuple(str(d) for d in range(10)),
            mirrors=(
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
            ),
            sha256={
                "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            },
        ),
        DatasetSpec(
            name="fashion-mnist",
            description="Zalando article images in 10 classes (Xiao, Rasul and Vollgraf)",
            subject="a piece of clothing",
            class_names=(
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
            ),
            mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
            sha256={
                "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            },
        ),
        DatasetSpec(
            name="kmnist",
            description="Kuzushiji-MNIST: cursive Japanese hiragana in 10 classes (Clanuwat et al.)",
            subject="a hiragana character",
            class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
            sha256={
                "train-images-idx3-ubyte.gz": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                "train-labels-idx1-ubyte.gz": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                "t10k-images-idx3-ubyte.gz": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                "t10k-labels-idx1-ubyte.gz": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
            },
        ),
    )
}


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} (or uci-digits, to evaluate on) or give a "
            "folder of IDX files"
        ) from None


def resolve_data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Where datasets live: `data_dir`, else $MNISTLAB_DATA, else $XDG_CACHE_HOME/mnistlab or ~/.cache/mnistlab."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV_VAR):
        return Path(os.environ[DATA_ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnistlab"
