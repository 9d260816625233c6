"""The Keras tutorials that mnistlab's recipes reproduce, as each tutorial writes its model and its training,
timed the way `bench/peers/compare.py` times mnistlab: training seconds per epoch (the validation that
Keras runs inside `fit` is not counted) and, outside that clock, the test accuracy after every epoch.

Runs in an environment of its own with TensorFlow (not mnistlab's, not in CI):

    python -m venv ~/tf && ~/tf/bin/pip install tensorflow-cpu
    ~/tf/bin/python bench/peers/keras_tutorials.py keras-cnn --data ../shared/data/mnist --epochs 12

Prints one JSON object: the tutorial, its curve ({epoch, train_seconds, test_accuracy} per epoch), the
training images, and the versions. The data are MNIST's four IDX files (gzipped), read here with numpy,
since `keras.datasets.mnist` downloads and this script must not need mnistlab (or torch) to run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a numpy array: magic (2 zero bytes, type 0x08 uint8, rank), the
    big-endian uint32 sizes, then the data."""
    data = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)


def load_mnist(folder: Path):
    def part(name):
        return read_idx(next(folder.glob(f"{name}*")))

    return ((part("train-images-idx3-ubyte"), part("train-labels-idx1-ubyte")),
            (part("t10k-images-idx3-ubyte"), part("t10k-labels-idx1-ubyte")))


def build(name: str):
    """Each tutorial's model and how it compiles and fits it: (model, fit keyword arguments, callbacks)."""
    import keras
    from keras import layers

    if name == "keras-cnn":  # Keras's "simple MNIST convnet"
        model = keras.Sequential([
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ])
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=15),
                     keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=10000)]
        return model, {"batch_size": 128, "validation": "test"}, callbacks
    if name == "allconv":  # the tutorial series' all-convolutional net with batch norm
        blocks = [keras.Input(shape=(28, 28, 1))]
        for i, width in enumerate((16, 32, 64)):
            for _ in range(2):
                blocks += [layers.Conv2D(width, 3, padding="same"), layers.BatchNormalization(),
                           layers.Activation("relu")]
            if i < 2:
                blocks.append(layers.MaxPooling2D())
        model = keras.Sequential(blocks + [layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(0.001), metrics=["accuracy"])
        return model, {"batch_size": 64, "validation": "split"}, []
    if name == "vanilla-cnn":  # the tutorial series' vanilla CNN
        blocks = [keras.Input(shape=(28, 28, 1))]
        for width in (16, 32, 64):
            blocks += [layers.Conv2D(width, 5, padding="same", activation="relu"), layers.MaxPooling2D()]
        model = keras.Sequential(blocks + [layers.Flatten(), layers.Dense(128, activation="relu"),
                                           layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model, {"batch_size": 128, "validation": "split"}, []
    if name == "keras-logreg":  # the Keras logistic-regression notebook
        model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(),
                                  layers.Dense(10, activation="softmax")])
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model, {"batch_size": 32, "validation": "none"}, []
    raise SystemExit(f"keras_tutorials: unknown tutorial {name!r}; choose one of {', '.join(TUTORIALS)}")


TUTORIALS = ("keras-cnn", "allconv", "vanilla-cnn", "keras-logreg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tutorial", choices=TUTORIALS)
    parser.add_argument("--data", required=True, help="a folder with MNIST's four IDX files")
    parser.add_argument("--epochs", type=int, required=True, help="at most this many epochs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(Path(args.data))
    x_train = np.expand_dims(x_train.astype("float32") / 255, -1)  # as the tutorials prepare the data
    x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
    y_train_1hot, y_test_1hot = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)
    model, fit, callbacks = build(args.tutorial)
    validation = fit.pop("validation")
    if validation == "test":
        fit["validation_data"] = (x_test, y_test_1hot)
    elif validation == "split":
        fit["validation_split"] = 0.1
    trained = int(len(x_train) * (0.9 if validation == "split" else 1.0))

    class Clock(keras.callbacks.Callback):
        """Training seconds per epoch (until Keras starts validating), then the test accuracy, untimed."""

        def __init__(self):
            super().__init__()
            self.curve, self.total, self.started, self.stopped = [], 0.0, None, None

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.stopped = time.perf_counter(), None

        def on_test_begin(self, logs=None):
            if self.started is not None and self.stopped is None:  # fit's own validation, not ours below
                self.stopped = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.total += (self.stopped or time.perf_counter()) - self.started
            self.started = None
            proba = self.model.predict(x_test, batch_size=1000, verbose=0)
            accuracy = float((proba.argmax(1) == y_test).mean())
            self.curve.append({"epoch": epoch + 1, "train_seconds": self.total, "test_accuracy": accuracy})

    clock = Clock()
    model.fit(x_train, y_train_1hot, epochs=args.epochs, callbacks=[clock, *callbacks], verbose=0, **fit)
    print(json.dumps({"tutorial": args.tutorial, "framework": f"Keras {keras.__version__}, TensorFlow "
                      f"{tf.__version__}", "python": platform.python_version(), "threads": os.cpu_count(),
                      "train_images": trained, "curve": clock.curve}))


if __name__ == "__main__":
    main()
