"""Ensembles: several runs whose class probabilities are averaged (the tutorials' model averaging).

An ensemble folder is self-contained: the members' best checkpoints are copied into it and described
beside them (see `EnsembleFolder`), so `evaluate`, `predict`, `export` and `mnistlab.load` take it like a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mnistlab.data.registry import DATASETS
from mnistlab.errors import MnistlabError
from mnistlab.models.io import copy_checkpoint, read_model_meta
from mnistlab.runs import EnsembleFolder, RunFolder, best_checkpoint, find_run_path, run_folder_of


def create_ensemble(runs: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None,
                    runs_dir: str | os.PathLike = "runs") -> Path:
    """Copy each run's best checkpoint into the ensemble folder `out_dir` (default: a new
    `<runs_dir>/ensemble-<n>`) and describe the ensemble there. Runs are folders, checkpoints, or names of
    runs in `runs_dir`."""
    if len(runs) < 2:
        raise MnistlabError("an ensemble needs at least two runs")
    checkpoints, sources = [], []
    for run in runs:
        path = find_run_path(run, runs_dir)
        sources.append(str(path))
        best = best_checkpoint(path)
        if not best.is_file():
            raise MnistlabError(f"{run}: no best checkpoint (is it a finished run folder?)")
        if best.resolve() in [c.resolve() for c in checkpoints]:
            raise MnistlabError(f"{run} is given twice; an ensemble averages different runs")
        checkpoints.append(best)
    metas = [read_model_meta(c) for c in checkpoints]
    names = {tuple(m.get("class_names") or ()) for m in metas}
    if len(names) != 1 or len({m.get("dataset") for m in metas}) != 1:
        raise MnistlabError("the runs of an ensemble must share a dataset and its classes; "
                            f"got {sorted({str(m.get('dataset')) for m in metas})}")
    ensemble = EnsembleFolder(out_dir) if out_dir is not None else EnsembleFolder.create(runs_dir)
    if ensemble.exists():
        raise MnistlabError(f"{ensemble.path} already holds an ensemble; choose another --out")
    members = [copy_checkpoint(checkpoint, ensemble.member_path(i)) for i, checkpoint in enumerate(checkpoints)]
    # what the dataset loads from: the first run's own (arrays it keeps, a folder's path), else the name
    first = RunFolder(run_folder_of(checkpoints[0]))
    dataset = (first.dataset_source() if first.exists() else None) or metas[0].get("dataset")
    if dataset and dataset not in DATASETS and Path(dataset).exists():  # a path: from anywhere
        dataset = str(Path(dataset).resolve())
    ensemble.write_spec({
        "members": [member.relative_to(ensemble.path).as_posix() for member in members], "sources": sources,
        "dataset": dataset, "class_names": list(names.pop()),
        "models": [m["model"]["name"] for m in metas],
    })
    return ensemble.path


def evaluate_ensemble(ensemble_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                      model: Any = None) -> dict[str, Any]:
    """Test-set metrics of an ensemble, each member's accuracy beside them; writes its metrics and the
    figures into the ensemble folder (members of your own model need `model`, as `mnistlab.load` does)."""
    from mnistlab.evaluation import evaluate_saved

    _, _, result = evaluate_saved(ensemble_dir, "test", data_dir=data_dir, model=model)
    EnsembleFolder(ensemble_dir).write_metrics({"test_accuracy": result["accuracy"], "test_loss": result["loss"],
                                                "member_test_accuracy": result["members"]})
    return result
