"""mnistlab in a real Jupyter kernel: a live progress bar drawn in place, figures and runs shown inline, and
the notebook's own matplotlib backend untouched."""

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

CELLS = [
    "import matplotlib\nbackend = matplotlib.get_backend()\nimport mnistlab\nfrom mnistlab import plots\n"
    "from mnistlab.training import build_config, train",
    'run = train(build_config(overrides={"model": "linear", "subset": 3000, "epochs": 2, "tensorboard": False}))',
    "plots.training_curves({run.name: run.history()})",
    "run",
    "assert matplotlib.get_backend() == backend, (backend, matplotlib.get_backend())\nprint('backend', backend)",
]


def test_a_notebook_shows_progress_figures_and_runs_inline(tmp_path, data_root):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    training, figure, shown, check = (cell.outputs for cell in notebook.cells[1:])
    bars = [o["data"]["text/html"] for o in training if o.get("output_type") == "display_data"]
    assert len(bars) == 2 and all("<progress" in bar for bar in bars)  # one bar per epoch, left at its end
    assert "epoch 2/2" in bars[1] and "val_acc" in bars[1]
    assert any("image/png" in o.get("data", {}) for o in figure)  # the returned Figure, drawn inline
    assert any("run mnist-linear-1" in o.get("data", {}).get("text/html", "") for o in shown)
    assert "backend module://matplotlib_inline.backend_inline" in check[0]["text"]


MODEL_CELL = """
import torch
from torch import nn

class DigitCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))
"""

TRAINING = [
    "import matplotlib\nbackend = matplotlib.get_backend()\nimport numpy as np\nimport mnistlab\n"
    "from mnistlab.data import load_dataset\nmnist = load_dataset('mnist')\n"
    "x_train, y_train = mnist.train_images[:5000], mnist.train_labels[:5000]\n"
    "x_val, y_val = mnist.train_images[5000:6000], mnist.train_labels[5000:6000]\n"
    "x_test = mnist.test_images[:500]",
    MODEL_CELL,
    "torch.manual_seed(0)\nrun = mnistlab.fit(DigitCNN(), (x_train, y_train), validation_data=(x_val, y_val), "
    "epochs=6, early_stopping=1, min_delta=0.5, tensorboard=False)",
    "mnistlab.show_curves(run)",
    "predictor = mnistlab.load(run, model=DigitCNN())\nmnistlab.show_predictions(predictor, x_test[:6])",
    "np.save('predicted.npy', predictor.predict_proba(x_test))\nprint(run.path)\n"
    "assert matplotlib.get_backend() == backend",
]
RELOADING = [
    "import numpy as np\nimport mnistlab\nfrom mnistlab.data import load_dataset\n"
    "x_test = load_dataset('mnist').test_images[:500]",
    MODEL_CELL,
    "predictor = mnistlab.load('{run}', model=DigitCNN())\n"
    "assert np.array_equal(predictor.predict_proba(x_test), np.load('predicted.npy'))\nprint('identical')",
]


def _execute(cells: list[str], folder) -> list:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    return [cell.outputs for cell in notebook.cells]


def test_your_own_cnn_on_arrays_trains_shows_and_reloads_in_a_fresh_kernel(tmp_path, data_root):
    _, _, training, curves, grid, saved = _execute(TRAINING, tmp_path)
    bars = [o["data"]["text/html"] for o in training if o.get("output_type") == "display_data"]
    # early stopping: no epoch improves val_loss by 0.5, so training stops after the second of six
    assert len(bars) == 2 and "epoch 2/6" in bars[-1]
    assert any("image/png" in o.get("data", {}) for o in curves)
    assert any("image/png" in o.get("data", {}) for o in grid)
    run = saved[0]["text"].strip()
    # a new kernel: the class defined again, the run loaded from its folder, the same probabilities
    *_, check = _execute([c.replace("{run}", run) for c in RELOADING], tmp_path)
    assert check[0]["text"].strip() == "identical"
