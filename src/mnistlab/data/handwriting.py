"""Real handwriting from outside MNIST: how well a digit model holds on writers and scanning it never saw.

`uci-digits` is the UCI optical-recognition set of handwritten digits (Alpaydin and Kaynak, 1998), as
scikit-learn ships it: 1,797 digits written on forms by 13 people, scanned by NIST's programs and reduced
to 8x8 counts of ink (0-16 per cell). Each is brought to MNIST's form the way `mnistlab predict` brings a
user's picture (`data/inputs.preprocess_digit`: the ink boxed to 20x20 and centred by mass in 28x28),
after a smooth upscaling of its 8x8 cells to 32x32, the size NIST's bitmaps had. The images are blurrier
and thicker than MNIST's: a model that has only learnt MNIST's exact look loses accuracy here, which is
what this set is for. It is an evaluation set (`mnistlab evaluate RUN --dataset uci-digits`): its 1,797
images are its test split, and it has no training split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistlab.errors import DataError

UCI_DIGITS = "uci-digits"
INSTALL = "pip install 'mnistlab[handwriting]'"


def load_uci_digits() -> dict:
    """The arrays of a Dataset: test_images (1797, 28, 28) uint8 in MNIST's form, test_labels (1797,)
    uint8, an empty training split, class names "0"-"9", and the source (scikit-learn's copy)."""
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"the dataset {UCI_DIGITS!r} comes with scikit-learn, which is not installed: "
                        f"{INSTALL}") from None
    from PIL import Image

    from mnistlab.data.inputs import preprocess_digit

    digits = datasets.load_digits()
    cells = np.asarray(digits.images, np.float32) * (255.0 / 16.0)  # ink counts 0-16 -> pixels 0-255
    images = np.stack([preprocess_digit(np.asarray(Image.fromarray(cell).resize((32, 32), Image.BILINEAR)))
                       for cell in cells])
    return {"train_images": np.zeros((0, 28, 28), np.uint8), "train_labels": np.zeros(0, np.uint8),
            "test_images": images, "test_labels": np.asarray(digits.target, np.uint8),
            "class_names": tuple(str(d) for d in range(10)),
            "source": Path(datasets.__file__).parent / "data" / "digits.csv.gz"}
