"""Run and ensemble folders: the one home of every name on disk that a run or an ensemble has.

    runs/<name>-<n>/
        settings.toml      fully resolved settings (`mnistlab train --config` repeats the run)
        command.txt        the exact command line
        environment.json   versions, device, git commit
        run.json           state (running, finished, interrupted, failed), times, error, the training process
                           (pid, host) and its heartbeat (the end of its last epoch)
        history.csv        one row per epoch
        metrics.json       final metrics (test loss and accuracy of the best checkpoint, ...)
        checkpoints/       best.* and last.* (safetensors + JSON, see models/io.py), last-state.pt (for --resume)
        data.npz           the arrays it was trained on, when they were given in memory (`mnistlab.fit`)
        events.out.tfevents.*  TensorBoard
        curves.png, confusion.png, mistakes.png (test; confusion-val.png ... for other splits), report.html

    runs/ensemble-<n>/
        ensemble.json      its members, the runs they came from, dataset and class names
        members/<i>.*      each member's best checkpoint, copied
        metrics.json, confusion.png, mistakes.png, curves.png, report.html

    runs/sweeps/<name>-<n>/
        sweep.json         what was asked (recipe, space, trials, metric, search, scheduler), for --resume
        trials/<trial>-1/  each trial's run folder
        tune/              Ray Tune's own state (what Tuner.restore continues from)
        trials.md, trials.json  the table of trials, best first; best-recipe.toml; search.png

Everything else reads and writes these files through `RunFolder`, `EnsembleFolder` and `SweepFolder`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from mnistlab._io import read_json, write_json, write_text
from mnistlab.errors import MnistlabError

STATES = ("running", "finished", "interrupted", "failed")  # as written; "stopped" is read (see RunFolder.state)
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "samples_per_s")
METRICS = "metrics.json"  # a run's and an ensemble's final metrics
REPORT = "report.html"


def figure_path(folder: str | os.PathLike, figure: str, split: str = "test") -> Path:
    """Where a run's or ensemble's figure goes: "curves", "confusion" or "mistakes" -> <folder>/<figure>.png
    for the test set, <folder>/<figure>-<split>.png for another split (so evaluating on one keeps the other's)."""
    if figure not in ("curves", "confusion", "mistakes"):
        raise ValueError(f"unknown figure {figure!r}")
    return Path(folder) / (f"{figure}.png" if split == "test" else f"{figure}-{split}.png")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):  # missing, or damaged (not JSON, not text): nothing is known
        return {}


def _numbered_folder(parent: str | os.PathLike, name: str) -> Path:
    """Make `<parent>/<name>-<n>` with the first free n (safe against concurrent runs)."""
    if not re.fullmatch(r"[\w.+=-]+", name):
        raise MnistlabError(f"run name {name!r} may only hold letters, digits and . _ - + =")
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    n = 1 + max((int(m.group(1)) for p in parent.glob(f"{name}-*")
                 if (m := re.fullmatch(re.escape(name) + r"-(\d+)", p.name))), default=0)
    while True:
        try:
            (parent / f"{name}-{n}").mkdir()
            return parent / f"{name}-{n}"
        except FileExistsError:
            n += 1


class RunFolder:
    SETTINGS, COMMAND, ENVIRONMENT, STATUS = "settings.toml", "command.txt", "environment.json", "run.json"
    HISTORY, METRICS, CHECKPOINTS, LAST_STATE = "history.csv", METRICS, "checkpoints", "last-state.pt"
    DATA = "data.npz"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder('{self.path}')"

    def __fspath__(self) -> str:  # a run is its folder: mnistlab.load(run), open(os.path.join(run, ...))
        return str(self.path)

    def _repr_html_(self) -> str:
        """In a notebook: what the run is and how it did, and its training curves."""
        from mnistlab._html import png, table

        settings = self.settings() if self.exists() else {}
        metrics, history = self.metrics(), self.history()
        vals = [r["val_accuracy"] for r in history if r.get("val_accuracy") is not None]
        rows = [("state", self.state()), ("model", settings.get("model", "-")),
                ("dataset", settings.get("dataset", "-")), ("epochs", len(history)),
                ("best validation accuracy", f"{max(vals):.4f}" if vals else "-")]
        if "test_accuracy" in metrics:
            rows.append(("test accuracy", f"{metrics['test_accuracy']:.4f}" + (
                f" ({metrics['test_accuracy_tta']:.4f} with TTA)" if "test_accuracy_tta" in metrics else "")))
            if "test_ece" in metrics:
                calibrated = (f", logits divided by {metrics['temperature']:.3f}" if "temperature" in metrics
                              else ", not calibrated")
                rows.append(("test calibration error (ECE)", f"{metrics['test_ece']:.4f}{calibrated}"))
            rows.append(("training time", f"{metrics.get('train_seconds', 0):.1f} s"))
        rows.append(("folder", self.path))
        curves = figure_path(self.path, "curves")
        return table(rows, f"run {self.name}") + (png(curves) if curves.is_file() else "")

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str) -> "RunFolder":
        """Make `<runs_dir>/<name>-<n>` with the first free n (safe against concurrent runs)."""
        return cls(_numbered_folder(runs_dir, name))

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunFolder":
        run = cls(path)
        if not run.exists():
            raise MnistlabError(f"{run.path} is not a run folder (no {cls.SETTINGS}); `mnistlab runs` lists runs")
        return run

    def exists(self) -> bool:
        """Whether the folder is a run's (it has its settings)."""
        return (self.path / self.SETTINGS).is_file()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    def checkpoint_path(self, which: str = "best") -> Path:
        """The weights file of the "best" or "last" checkpoint, whether or not it exists yet."""
        return self.checkpoints / f"{which}.safetensors"

    def checkpoint(self, which: str = "best") -> Path:
        """The weights file of an existing checkpoint; an error that says the run's state if there is none."""
        path = self.checkpoint_path(which)
        if not path.is_file():
            raise MnistlabError(f"{self.path} has no {which} checkpoint yet (its state: {self.state()})")
        return path

    @property
    def data_path(self) -> Path:
        """Where a run trained on arrays keeps them (see `data/arrays.py`), so it can be resumed and evaluated."""
        return self.path / self.DATA

    def dataset_source(self) -> str | None:
        """What the run's dataset loads from: its own arrays if it has them (wherever the folder has moved),
        else what its settings name."""
        return str(self.data_path) if self.data_path.is_file() else self.settings().get("dataset")

    @property
    def last_state(self) -> Path:
        """What `--resume` continues from: optimizer, callbacks and epoch (torch.save, tensors only)."""
        return self.checkpoints / self.LAST_STATE

    # -- writing --------------------------------------------------------------------------------------
    def write_start(self, settings_toml: str, command: str, device: str) -> None:
        from mnistlab.devices import environment

        self.write_settings(settings_toml)
        write_text(self.path / self.COMMAND, command + "\n")
        write_json(self.path / self.ENVIRONMENT, environment(device))
        self.set_state("running", started=time.time())

    def write_settings(self, settings_toml: str) -> None:
        """Replace the recorded settings (a resume that trains the run further changes its epochs)."""
        write_text(self.path / self.SETTINGS, settings_toml)

    def set_state(self, state: str, **info: Any) -> None:
        """Record the run's state; a running one records its process (pid and host), so that a run whose
        process died without a word (kill -9, a power cut) reads as "stopped"."""
        assert state in STATES
        if state == "running":
            info = {**info, "pid": os.getpid(), "host": socket.gethostname()}
        status = {**self.status(), **info, "state": state, "updated": time.time()}
        write_json(self.path / self.STATUS, status)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / self.METRICS, metrics)

    def write_history(self, rows: list[dict[str, float]]) -> None:
        write_text(self.path / self.HISTORY, history_to_csv(rows))

    # -- reading --------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return _read_json(self.path / self.STATUS)

    def state(self) -> str:
        """running, finished, interrupted, failed, or "stopped": said to be running, by a process of this
        machine that no longer exists (resumable like an interrupted run)."""
        status = self.status()
        state = status.get("state", "unknown")
        if state == "running" and status.get("host") == socket.gethostname() and not _process_alive(status.get("pid")):
            return "stopped"
        return state

    def metrics(self) -> dict[str, Any]:
        return _read_json(self.path / self.METRICS)

    def settings(self) -> dict[str, Any]:
        from mnistlab.config import read_toml

        return read_toml(self.path / self.SETTINGS)

    def settings_text(self) -> str:
        return (self.path / self.SETTINGS).read_text()

    def command(self) -> str:
        """The command line that started the run (what would repeat it, if a kill came before it was saved)."""
        try:
            return (self.path / self.COMMAND).read_text().strip()
        except FileNotFoundError:
            return f"mnistlab train --config {self.path / self.SETTINGS}"

    def history(self) -> list[dict[str, float]]:
        path = self.path / self.HISTORY
        return read_history_csv(path) if path.is_file() else []


class EnsembleFolder:
    """A self-contained ensemble: its members' checkpoints copied into `members/`, described by `ensemble.json`
    (members, sources, dataset, class_names, models)."""

    SPEC, MEMBERS, METRICS = "ensemble.json", "members", METRICS

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"EnsembleFolder('{self.path}')"

    @classmethod
    def create(cls, runs_dir: str | os.PathLike) -> "EnsembleFolder":
        """A new `<runs_dir>/ensemble-<n>`, numbered like runs so that none is overwritten."""
        return cls(_numbered_folder(runs_dir, "ensemble"))

    def exists(self) -> bool:
        return (self.path / self.SPEC).is_file()

    @property
    def name(self) -> str:
        return self.path.name

    def member_path(self, index: int) -> Path:
        """Where member `index`'s checkpoint weights go (the model description beside it)."""
        return self.path / self.MEMBERS / f"{index}.safetensors"

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_json(self.path / self.SPEC, spec)

    def spec(self) -> dict[str, Any]:
        path = self.path / self.SPEC
        spec = read_json(path, f"{self.path} is not an ensemble folder (no {self.SPEC})", "; make the ensemble again")
        if not isinstance(spec, dict) or not isinstance(spec.get("members"), list):
            raise MnistlabError(f"{path}: not an mnistlab ensemble description (no list of members)")
        return spec

    def members(self) -> list[Path]:
        """The members' checkpoint weights, in order."""
        return [self.path / member for member in self.spec()["members"]]

    def metrics(self) -> dict[str, Any]:
        return _read_json(self.path / self.METRICS)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json(self.path / self.METRICS, metrics)


class SweepFolder:
    """A settings search (`mnistlab sweep`): its request, its trials' run folders and its results."""

    SPEC, TRIALS, TUNE = "sweep.json", "trials", "tune"
    TABLE_MD, TABLE_JSON, BEST_RECIPE, PLOT = "trials.md", "trials.json", "best-recipe.toml", "search.png"

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"SweepFolder('{self.path}')"

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def create(cls, parent: str | os.PathLike, name: str) -> "SweepFolder":
        return cls(_numbered_folder(parent, name))

    @classmethod
    def open(cls, path: str | os.PathLike) -> "SweepFolder":
        sweep = cls(path)
        if not (sweep.path / cls.SPEC).is_file():
            raise MnistlabError(f"{sweep.path} is not a sweep folder (no {cls.SPEC})")
        return sweep

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def trials(self) -> Path:
        return self.path / self.TRIALS

    @property
    def tune(self) -> Path:
        return self.path / self.TUNE

    def spec(self) -> dict[str, Any]:
        return read_json(self.path / self.SPEC, f"{self.path} is not a sweep folder", "")

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_json(self.path / self.SPEC, spec)

    def file(self, name: str) -> Path:
        """One of its result files: TABLE_MD, TABLE_JSON, BEST_RECIPE or PLOT."""
        assert name in (self.TABLE_MD, self.TABLE_JSON, self.BEST_RECIPE, self.PLOT), name
        return self.path / name


def _process_alive(pid: Any) -> bool:
    """Whether process `pid` exists on this machine (an unknown pid counts as alive: nothing is claimed)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def best_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint a path stands for: a run folder's best one, or the path itself (a checkpoint file)."""
    path = Path(path)
    return RunFolder(path).checkpoint_path("best") if path.is_dir() else path


def run_folder_of(checkpoint: str | os.PathLike) -> Path:
    """The folder that a run's or ensemble's checkpoint lies in, or a folder itself; an exported file's folder
    otherwise."""
    path = Path(checkpoint)
    if path.is_dir():
        return path
    if path.parent.name in (RunFolder.CHECKPOINTS, EnsembleFolder.MEMBERS):
        return path.parent.parent
    return path.parent


def history_to_csv(rows: list[dict[str, float]]) -> str:
    """The history as CSV: the standard columns first, any others (a callback's own) after them."""
    extra = sorted({k for r in rows for k in r} - set(HISTORY_COLUMNS))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*HISTORY_COLUMNS, *extra], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in writer.fieldnames})
    return out.getvalue()


def read_history_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows.append({k: (float(v) if v not in ("", None) else None) for k, v in row.items()})
    return rows


def list_runs(runs_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One summary per run folder (and ensemble folder) under `runs_dir`, oldest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise MnistlabError(f"{runs_dir}: no such runs folder; train first, or pass --runs-dir")
    rows = []
    for path in sorted(runs_dir.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
        if EnsembleFolder(path).exists():
            rows.append(_ensemble_row(EnsembleFolder(path)))
            continue
        run = RunFolder(path)
        if not run.exists():
            continue
        settings, metrics, status = run.settings(), run.metrics(), run.status()
        history = run.history()
        vals = [r["val_accuracy"] for r in history if r.get("val_accuracy") is not None]
        rows.append({
            "name": run.name, "dataset": settings.get("dataset"), "model": settings.get("model"),
            "parameters": metrics.get("parameters") or status.get("parameters"),
            "epochs": len(history), "best_val_accuracy": max(vals) if vals else None,
            "test_accuracy": metrics.get("test_accuracy"), "wall_seconds": status.get("wall_seconds"),
            "state": run.state(), "path": str(path),
        })
    return rows


def _ensemble_row(ensemble: EnsembleFolder) -> dict[str, Any]:
    """An ensemble folder as a row of `list_runs`: its members' models, its test accuracy once evaluated."""
    spec = ensemble.spec()
    models = sorted(set(spec.get("models", [])))
    return {"name": ensemble.name, "dataset": spec.get("dataset"),
            "model": f"{len(spec['members'])} x {'/'.join(models)}", "parameters": None, "epochs": None,
            "best_val_accuracy": None, "test_accuracy": ensemble.metrics().get("test_accuracy"),
            "wall_seconds": None, "state": "ensemble", "path": str(ensemble.path)}


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
