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
