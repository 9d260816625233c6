"""Every notebook in examples/ runs from top to bottom in a real Jupyter kernel (shortened by MNISTLAB_QUICK:
a little data, an epoch or two; the notebooks' saved outputs are the full runs)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.ipynb"))


def test_there_is_a_notebook_for_each_tutorial():
    assert {p.stem for p in EXAMPLES} >= {"keras-convnet", "keras-practical", "keras-logistic-regression",
                                          "gluon-lenet5-fashion", "tensorflow-idx"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_example_runs_in_a_kernel(path, tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("MNISTLAB_QUICK", "1")
    notebook = nbformat.read(path, as_version=4)
    counts = [cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not saved from one full run, top to bottom"
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any error
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert (tmp_path / "runs").is_dir()  # it trained, in its own folder
