"""Plots return Figures (a notebook shows them inline), write PNGs only when asked, and leave the user's
matplotlib backend and pyplot's open figures alone."""

import subprocess
import sys

import numpy as np


def test_every_plot_returns_a_figure_and_saves_only_when_given_a_path(tmp_path):
    from matplotlib.figure import Figure

    from mnistlab import plots

    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    rows = [{"epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_loss": 0.4, "val_accuracy": 0.92}]
    made = [plots.sample_grid(images, np.arange(4), [str(i) for i in range(10)]),
            plots.training_curves({"run": rows}),
            plots.confusion_matrix_plot(np.eye(3, dtype=int) * 5, ["a", "b", "c"]),
            plots.mistakes_grid(images[:2], [1, 2], [2, 1], [0.9, 0.8], [str(i) for i in range(10)])]
    assert all(isinstance(fig, Figure) for fig in made) and not list(tmp_path.iterdir())
    fig = plots.training_curves({"run": rows}, tmp_path / "curves.png")
    assert isinstance(fig, Figure) and (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_the_loss_axis_is_labelled_in_plain_numbers():
    import io

    from mnistlab import plots

    rows = [{"epoch": e, "loss": loss, "accuracy": 0.9} for e, loss in ((1, 0.6), (2, 0.3), (3, 0.12))]
    fig = plots.training_curves({"run": rows})
    fig.savefig(io.BytesIO(), format="png")  # lays out the ticks
    loss_axis = fig.axes[0]
    low, high = loss_axis.get_ylim()
    shown = [(t.get_position()[1], t.get_text()) for t in loss_axis.get_yticklabels()
             if low <= t.get_position()[1] <= high]
    assert [text for _, text in shown] == ["0.2", "0.5"] and all(float(text) == value for value, text in shown)


def test_an_image_grid_puts_each_image_under_its_own_caption():
    from mnistlab import plots

    images = np.random.default_rng(1).integers(1, 256, (5, 28, 28), dtype=np.uint8)  # no background pixels
    captions = [f"true {i}\npred {9 - i}" for i in range(5)]
    colors = ["red", "black", "red", "black", "red"]
    fig = plots.image_grid(images, captions, title="five", columns=3, title_colors=colors)
    (ax,) = fig.axes
    tiled = np.asarray(ax.images[0].get_array())
    assert [t.get_text() for t in ax.texts] == captions and [t.get_color() for t in ax.texts] == colors
    assert (tiled > 0).sum() == images.size  # every pixel of every image, nothing else
    for image, text in zip(images, ax.texts):
        x, y = text.get_position()
        left = round(x - 14)
        top = int(y) + int(np.argmax(tiled[int(y):, left] > 0))  # the first inked row below the caption
        assert np.array_equal(tiled[top:top + 28, left:left + 28], image)
    assert fig.texts[0].get_text() == "five"


def test_the_users_backend_is_the_same_before_and_after(mnist_runs, tmp_path):
    code = f"""
import matplotlib
matplotlib.use("svg")  # a backend of the user's own choosing
import matplotlib.pyplot as plt
import mnistlab
from mnistlab import plots
from mnistlab.cli import main
from mnistlab.training import build_config, train
run = train(build_config(overrides={{"model": "linear", "subset": 600, "epochs": 1, "tensorboard": False}}),
            {str(tmp_path)!r}, progress="quiet")
main(["evaluate", {str(mnist_runs[0].path)!r}, "--out", {str(tmp_path / "figures")!r}])
main(["report", str(run.path)])
plots.training_curves({{"run": run.history()}})
print(matplotlib.get_backend(), len(plt.get_fignums()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["svg", "0"]


def test_sweep_scatter_draws_the_metric_against_each_setting(tmp_path):
    from mnistlab import plots

    rows = [{"settings": {"lr": lr, "batch_size": bs}, "val_accuracy": acc, "state": state}
            for lr, bs, acc, state in [(0.1, 128, 0.97, "finished"), (2.0, 256, 0.2, "stopped early"),
                                       (0.5, 64, 0.98, "finished"), (1.0, 128, None, "failed")]]
    fig = plots.sweep_scatter(rows, [("lr", "log"), ("batch_size", "category")], "val_accuracy",
                              tmp_path / "search.png", "a sweep")
    lr_axis, batch_axis = fig.axes
    assert lr_axis.get_xscale() == "log"
    assert [t.get_text() for t in batch_axis.get_xticklabels()] == ["64", "128", "256"]  # in order, not as text
    assert sum(len(c.get_offsets()) for c in lr_axis.collections) == 3  # the failed trial has no figure
    assert (tmp_path / "search.png").stat().st_size > 5_000
