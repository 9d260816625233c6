"""Ensembles: several runs whose class probabilities are averaged (the tutorials' model averaging).

An ensemble folder is self-contained: the members' best checkpoints are copied into it, and
`ensemble.json` lists them, so `evaluate`, `predict`, `export` and `mnistlab.load` take it like a run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from mnistlab._io import write_json
from mnistlab.errors import MnistlabError
from mnistlab.models.io import read_model_meta
from mnistlab.runs import ENSEMBLE_FILE, RunFolder, find_run_path


def create_ensemble(runs: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None,
                    runs_dir: str | os.PathLike = "runs") -> Path:
    """Copy each run's best checkpoint into `out_dir/members/` (default: a new `<runs_dir>/ensemble-<n>`) and
    describe the ensemble there. Runs are folders, checkpoints, or names of runs in `runs_dir`."""
    if len(runs) < 2:
        raise MnistlabError("an ensemble needs at least two runs")
    checkpoints, sources = [], []
    for run in runs:
        path = find_run_path(run, runs_dir)
        sources.append(str(path))
        best = path / "checkpoints" / "best.safetensors" if path.is_dir() else path
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
    if out_dir is None:
        out_dir = RunFolder.create(runs_dir, "ensemble").path  # numbered like runs, so none is overwritten
    out_dir = Path(out_dir)
    if (out_dir / ENSEMBLE_FILE).exists():
        raise MnistlabError(f"{out_dir} already holds an ensemble; choose another --out")
    (out_dir / "members").mkdir(parents=True, exist_ok=True)
    members = []
    for i, checkpoint in enumerate(checkpoints):
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(checkpoint.with_suffix(suffix), out_dir / "members" / f"{i}{suffix}")
        members.append(f"members/{i}.safetensors")
    write_json(out_dir / ENSEMBLE_FILE, {
        "members": members, "sources": sources, "dataset": metas[0].get("dataset"),
        "class_names": list(names.pop()), "models": [m["model"]["name"] for m in metas],
    })
    return out_dir


def evaluate_ensemble(ensemble_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None
                      ) -> dict[str, Any]:
    """Test-set metrics of an ensemble, each member's accuracy beside them; writes metrics.json and the
    figures into the ensemble folder."""
    from mnistlab.evaluation import evaluate_saved

    _, _, result = evaluate_saved(ensemble_dir, "test", data_dir=data_dir)
    write_json(Path(ensemble_dir) / "metrics.json", {"test_accuracy": result["accuracy"], "test_loss": result["loss"],
                                                     "member_test_accuracy": result["members"]})
    return result
