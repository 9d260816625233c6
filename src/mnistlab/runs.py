"""Run folders: one folder per training run holding everything about it.

    runs/<name>-<n>/
        settings.toml      fully resolved settings (`mnistlab train --config` repeats the run)
        command.txt        the exact command line
        environment.json   versions, device, git commit
        run.json           state (running, finished, interrupted, failed), times, error
        history.csv        one row per epoch
        metrics.json       final metrics (test loss and accuracy of the best checkpoint, ...)
        checkpoints/       best.* and last.* (safetensors + JSON), last-state.pt (for --resume)
        events.out.tfevents.*  TensorBoard
        *.png              figures
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from mnistlab._io import write_json, write_text
from mnistlab.errors import MnistlabError

STATES = ("running", "finished", "interrupted", "failed")
ENSEMBLE_FILE = "ensemble.json"  # what makes a folder an ensemble (see ensemble.py)


class RunFolder:
    SETTINGS, COMMAND, ENVIRONMENT, STATUS = "settings.toml", "command.txt", "environment.json", "run.json"
    HISTORY, METRICS, CHECKPOINTS = "history.csv", "metrics.json", "checkpoints"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str) -> "RunFolder":
        """Make `<runs_dir>/<name>-<n>` with the first free n (safe against concurrent runs)."""
        if not re.fullmatch(r"[\w.+=-]+", name):
            raise MnistlabError(f"run name {name!r} may only hold letters, digits and . _ - + =")
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        n = 1 + max((int(m.group(1)) for p in runs_dir.glob(f"{name}-*")
                     if (m := re.fullmatch(re.escape(name) + r"-(\d+)", p.name))), default=0)
        while True:
            try:
                (runs_dir / f"{name}-{n}").mkdir()
                return cls(runs_dir / f"{name}-{n}")
            except FileExistsError:
                n += 1

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunFolder":
        run = cls(path)
        if not (run.path / cls.SETTINGS).is_file():
            raise MnistlabError(f"{run.path} is not a run folder (no {cls.SETTINGS}); `mnistlab runs` lists runs")
        return run

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    def checkpoint(self, which: str = "best") -> Path:
        path = self.checkpoints / f"{which}.safetensors"
        if not path.is_file():
            raise MnistlabError(f"{self.path} has no {which} checkpoint yet (its state: {self.state()})")
        return path

    # -- writing --------------------------------------------------------------------------------------
    def write_start(self, settings_toml: str, command: str, device: str) -> None:
        write_text(self.path / self.SETTINGS, settings_toml)
        write_text(self.path / self.COMMAND, command + "\n")
        write_json(self.path / self.ENVIRONMENT, environment(device))
        self.set_state("running", started=time.time())

    def set_state(self, state: str, **info: Any) -> None:
        assert state in STATES
        status = {**self.status(), **info, "state": state, "updated": time.time()}
        write_json(self.path / self.STATUS, status)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / self.METRICS, metrics)

    # -- reading --------------------------------------------------------------------------------------
    def _json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.path / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def status(self) -> dict[str, Any]:
        return self._json(self.STATUS)

    def state(self) -> str:
        return self.status().get("state", "unknown")

    def metrics(self) -> dict[str, Any]:
        return self._json(self.METRICS)

    def settings(self) -> dict[str, Any]:
        from mnistlab.config import read_toml

        return read_toml(self.path / self.SETTINGS)

    def history(self) -> list[dict[str, float]]:
        from mnistlab.training.callbacks.history import read_history_csv

        path = self.path / self.HISTORY
        return read_history_csv(path) if path.is_file() else []


def environment(device: str) -> dict[str, Any]:
    import numpy
    import torch

    import mnistlab

    env = {"mnistlab": mnistlab.__version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "platform": platform.platform(), "processor": platform.processor(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    env["git_commit"] = _git_commit()
    return env


def thread_count() -> str:
    """How many CPU threads torch computes with, e.g. "2 threads": CPU figures depend on it."""
    import torch

    n = torch.get_num_threads()
    return f"{n} thread{'s' if n > 1 else ''}"


def device_description(device: str) -> str:
    """What a measurement ran on, for a row of a result table: "cpu, 2 threads" (CPU figures depend on how
    many threads computed them) or the GPU's name."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu, {thread_count()}" if device == "cpu" else device


def machine_summary(threads: bool = True) -> str:
    """One line naming what a measurement ran on, for the headers of result tables (`threads=False` where
    each row says its own)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() often says only the architecture
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if threads:
        cpu += f" ({thread_count()})"
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}{gpu}, torch {torch.__version__}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def list_runs(runs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One summary per run folder (and ensemble folder) under `runs_dir`, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise MnistlabError(f"{runs_dir}: no such runs folder; train first, or pass --runs-dir")
    rows = []
    for path in sorted(runs_dir.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
        if (path / ENSEMBLE_FILE).is_file():
            rows.append(_ensemble_row(path))
            continue
        if not (path / RunFolder.SETTINGS).is_file():
            continue
        run = RunFolder(path)
        settings, metrics, status = run.settings(), run.metrics(), run.status()
        history = run.history()
        vals = [r["val_accuracy"] for r in history if r.get("val_accuracy") is not None]
        rows.append({
            "name": run.name, "dataset": settings.get("dataset"), "model": settings.get("model"),
            "parameters": metrics.get("parameters") or status.get("parameters"),
            "epochs": len(history), "best_val_accuracy": max(vals) if vals else None,
            "test_accuracy": metrics.get("test_accuracy"), "wall_seconds": status.get("wall_seconds"),
            "state": status.get("state", "unknown"), "path": str(path),
        })
    return rows


def _ensemble_row(path: Path) -> dict[str, Any]:
    """An ensemble folder as a row of `list_runs`: its members' models, its test accuracy once evaluated."""
    spec = json.loads((path / ENSEMBLE_FILE).read_text())
    metrics_file = path / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    models = sorted(set(spec.get("models", [])))
    return {"name": path.name, "dataset": spec.get("dataset"), "model": f"{len(spec['members'])} x {'/'.join(models)}",
            "parameters": None, "epochs": None, "best_val_accuracy": None,
            "test_accuracy": metrics.get("test_accuracy"), "wall_seconds": None, "state": "ensemble",
            "path": str(path)}


def find_run_path(run: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> Path:
    """A run, ensemble or checkpoint given as a path, or as a name inside `runs_dir`."""
    path = Path(run)
    if not path.exists() and (Path(runs_dir) / run).exists():
        path = Path(runs_dir) / run
    if not path.exists():
        raise MnistlabError(f"run {str(run)!r} not found (neither a path nor a run in {runs_dir}/)")
    return path


def resolve_run(run: str | os.PathLike, runs_dir: str | os.PathLike = "runs") -> RunFolder:
    """A run folder given as a path, or as a name inside `runs_dir`."""
    return RunFolder.open(find_run_path(run, runs_dir))
