"""mnistlab: train, compare and ship neural-network classifiers for MNIST-family image datasets.

The package reads like the data flow, and each layer imports only those before it:

    ground     _io, errors, choices, config, settings, devices, plots   (no torch in the first five)
    data/      IDX files, the dataset registry and downloads, the user's own files, splits, augmentation
    models/    the registry and the zoo, normalization inside the model, inference, checkpoints
    runs       run and ensemble folders (every name on disk), and metrics
    training/  the device-resident loader, the trainer, callbacks, whole runs
    predict, evaluation, ensemble, export, report, serve/, recipes/, reproduce   (looking inside, shipping)
    cli        the command: parses and calls the above

Submodules are imported on first use so the command line starts fast.
"""

from __future__ import annotations

from mnistlab._version import __version__

__all__ = ["__version__", "evaluate", "fit", "load", "show_curves", "show_predictions", "show_samples", "summary"]


def fit(model=None, data=None, *, validation_data=None, validation_split: float | None = None,
        test_data=None, class_names=None, config=None, runs_dir="runs", name: str | None = None,
        progress: str = "auto", callbacks=(), **settings):
    """Train a model as `mnistlab train` does (the same trainer, callbacks, checkpoints, TensorBoard and run
    folder) and return its `RunFolder`, which shows itself in a notebook.

    model: a zoo name (`mnistlab models`; default fastnet-wide); your own `torch.nn.Module` that maps
        images (N, 1, H, W) to logits (N, classes), taking raw pixels 0-255 because the normalization
        (`normalize=`: "global", the default for your own, "scale" or "standardize") is put in front of
        it, and trained in place, as Keras's model.fit does; a function or class that builds one (called
        with num_classes and image_shape if it takes them, and `model_options`); or a reference
        "path/to/file.py:function".
    data: (images, labels) arrays (numpy or torch; images (N, H, W), (N, 1, H, W) or (N, H*W), uint8 or
        float 0-255; labels class indices or one-hot), a dataset name (default mnist), a folder or an .npz
        file. Arrays are saved in the run folder, so the run can be resumed and evaluated later.
    validation_data: (images, labels) to validate on, as Keras's; validation_split: the last fraction of
        the training arrays instead (also Keras's); neither: a seeded tenth of train. test_data: (images,
        labels) tested once at the end (without it, arrays have no test set). class_names: one per label.
    settings: any `mnistlab train` setting by its name (epochs=5, lr=1e-3, early_stopping=3,
        augment="rotate=10", ...; `mnistlab train --help` lists them); config: a TOML file of them.
    """
    from mnistlab.training.pipeline import fit as _fit

    return _fit(model, data, validation_data=validation_data, validation_split=validation_split,
                test_data=test_data, class_names=class_names, config=config, runs_dir=runs_dir, name=name,
                progress=progress, callbacks=callbacks, **settings)


def load(path, device: str = "cpu", model=None):
    """A `Predictor` for a run folder, an ensemble folder or a checkpoint: `.predict(images)` and
    `.predict_proba(images)` on raw arrays (N, 28, 28), (N, 1, 28, 28) or (N, 784), uint8 or float 0-255.

    A run of your own model needs its code, which mnistlab never imports on a checkpoint's word alone:
    `model=MyNet()` (an instance, whose weights are replaced), the function that builds it, or its
    reference "path/to/file.py:function"."""
    from mnistlab.predict import load as _load

    return _load(path, device, model)


def evaluate(source, images=None, labels=None, *, split: str = "test", tta: bool = False, model=None):
    """Metrics (an `Evaluation`: a dict that prints as a table and shows its confusion matrix in a
    notebook) of a run, ensemble, checkpoint or `Predictor` on (images, labels), or on a split ("test",
    "train" or "val") of its own dataset, whose figures are then written into its folder."""
    from mnistlab.evaluation import evaluate as _evaluate
    from mnistlab.evaluation import evaluate_saved
    from mnistlab.predict import Predictor

    if images is None:
        if isinstance(source, Predictor):
            source = source.source
        return evaluate_saved(source, split, tta=tta, model=model)[2]
    predictor = source if isinstance(source, Predictor) else load(source, model=model)
    return _evaluate(predictor, images, labels, tta=tta)


def summary(model, input_shape: tuple[int, ...] | None = None, title: str = ""):
    """A Keras-style table of any `nn.Module` (a zoo model, or your own) for a batch of `input_shape`
    (channels, height, width; default (1, 28, 28), or a zoo model's own): each layer's output shape and
    parameters, then the totals. `print(mnistlab.summary(net))`; a notebook shows it as it is."""
    from mnistlab.models.summary import ModelSummary, format_summary

    title = title or getattr(model, "spec", {}).get("name") or type(model).__name__  # a zoo model's name
    return ModelSummary(format_summary(model, title, input_shape))


def show_samples(data="mnist", labels=None, class_names=None, count: int = 16, split: str = "train",
                 out=None):
    """A labelled grid of the first `count` images of a dataset (a name, folder, .npz or `Dataset`) or of
    arrays `data` with `labels`: a matplotlib Figure, shown inline in a notebook and saved if `out`."""
    from mnistlab import plots
    from mnistlab.data.dataset import Dataset, load_dataset

    if labels is not None:  # arrays: checked, and named, as fit takes them
        dataset = Dataset.from_arrays((data, labels), class_names=class_names)
        images, labels, title = dataset.train_images, dataset.train_labels, ""
    else:
        dataset = data if isinstance(data, Dataset) else load_dataset(data)
        (images, labels), title = dataset.split(split), f"{dataset.name}, {split}"
    return plots.sample_grid(images[:count], labels[:count], dataset.class_names, out, title)


def show_predictions(source, images, labels=None, count: int = 16, model=None, out=None):
    """The first `count` images with what a run, ensemble, checkpoint or `Predictor` predicts for them (class
    and probability; with `labels`, the true class too, wrong answers in red): a Figure, as the tutorials'
    "predict a few images and show them"."""
    from mnistlab import plots
    from mnistlab.data.arrays import check_images
    from mnistlab.predict import Predictor

    predictor = source if isinstance(source, Predictor) else load(source, model=model)
    shown = check_images(images[:count], "images", predictor.image_shape)
    return plots.prediction_grid(shown, predictor.describe(images[:count]), out,
                                 truth=None if labels is None else [predictor.class_names[int(y)]
                                                                    for y in labels[:count]])


def show_curves(*runs, runs_dir="runs", out=None):
    """Loss and accuracy per epoch of one or several runs (run folders, their paths, or names of runs in
    `runs_dir`), training solid and validation dashed: a Figure (written to `out` if given)."""
    from mnistlab import plots
    from mnistlab.runs import resolve_run

    folders = [resolve_run(run, runs_dir) for run in runs]
    return plots.training_curves({run.name: run.history() for run in folders}, out)
