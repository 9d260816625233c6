"""`mnistlab reproduce`: run recipes over seeds and tabulate mnistlab's figures beside the published ones."""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from mnistlab._io import write_json, write_text
from mnistlab.recipes import Recipe, list_recipes, load_recipe, train_recipe
from mnistlab.runs import RunFolder

# --quick: enough to prove every recipe runs end to end, not to reproduce its figure.
QUICK = {"epochs": 1, "subset": 3000, "early_stopping": 0, "tensorboard": False}
METRICS = ("test_accuracy", "val_accuracy", "train_accuracy", "test_loss")


def _figures(run, ensemble_result: dict | None = None, train_epochs: tuple[int, ...] = ()) -> dict[str, float]:
    """A run's figures: the validation accuracy of the epoch whose model was kept (the best by the checkpoint
    monitor, or the last), and the training accuracy of the last epoch, or its mean over `train_epochs`
    (first, last) where the tutorial's metric accumulated over those."""
    if ensemble_result is not None:
        return {"test_accuracy": ensemble_result["accuracy"], "test_loss": ensemble_result["loss"]}
    metrics, history = run.metrics(), run.history()
    last = history[-1] if history else {}
    train_accuracy = last.get("accuracy")
    if train_epochs:
        chosen = [r["accuracy"] for r in history if train_epochs[0] <= r["epoch"] <= train_epochs[1]]
        train_accuracy = statistics.fmean(chosen) if chosen else None
    figures = {"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
               "train_accuracy": train_accuracy}
    kept = next((r for r in history if r["epoch"] == metrics.get("best_epoch")), {})  # the model saved and tested
    if kept.get("val_accuracy") is not None:
        figures["val_accuracy"] = kept["val_accuracy"]
    return figures


@dataclass
class Job:
    """One training of a reproduction: a recipe's seed (or one member of an ensemble seed)."""

    recipe: Recipe
    seed: int  # the row's seed
    train_seed: int  # the training's own: 100 * seed + member for an ensemble's members
    name: str | None  # the run's name (default RECIPE-s<seed>)


@dataclass
class Trained:
    """A finished job: its run, and what it ran on (the machine of whichever process trained it)."""

    run: RunFolder
    device: str  # device_description of the run's device, e.g. "cpu, 2 threads"
    machine: str  # devices.machine_summary of the machine it ran on


def jobs_of(recipe: Recipe, seeds: int) -> list[Job]:
    if recipe.ensemble > 1:
        return [Job(recipe, seed, 100 * seed + m, f"{recipe.name}-s{seed}-m{m}")
                for seed in range(seeds) for m in range(recipe.ensemble)]
    return [Job(recipe, seed, seed, None) for seed in range(seeds)]


def train_job(job: Job, device: str, overrides: dict[str, Any], runs_dir: Path, threads: int | None = None
              ) -> Trained:
    """Train one job here (in this process, or in a Ray worker with `threads` torch threads)."""
    from mnistlab.devices import device_description, machine_summary

    if threads:
        import torch

        torch.set_num_threads(threads)
    run = train_recipe(job.recipe, job.train_seed, device, overrides, runs_dir, job.name)
    return Trained(run, device_description(run.metrics()["device"]), machine_summary(threads=False))


def row_of(recipe: Recipe, seeds: int, trained: list[Trained], runs_dir: Path, quick: bool, seconds: float
           ) -> dict[str, Any]:
    """The table's row of a recipe from its trained jobs (in `jobs_of`' order): figures per seed (an
    ensemble's members averaged first), then their mean and spread."""
    per_seed: list[dict[str, float]] = []
    members = max(recipe.ensemble, 1)
    for seed in range(seeds):
        runs = [t.run for t in trained[seed * members:(seed + 1) * members]]
        if recipe.ensemble > 1:
            per_seed.append(_ensemble_figures(runs, runs_dir / f"{recipe.name}-s{seed}-ensemble"))
        else:
            per_seed.append(_figures(runs[0], train_epochs=recipe.train_accuracy_epochs))
    last = trained[-1]
    row = {"recipe": recipe.name, "title": recipe.title, "published": recipe.published, "seeds": seeds,
           "epochs": last.run.metrics()["epochs"], "wall_seconds": round(seconds, 1), "device": last.device,
           "machine": "; ".join(sorted({t.machine for t in trained})), "quick": quick, "mnistlab": {}}
    for key in METRICS:
        values = [f[key] for f in per_seed if f.get(key) is not None]
        if values:
            row["mnistlab"][key] = {"mean": statistics.fmean(values),
                                    "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return row


def reproduce_recipe(recipe: Recipe, seeds: int, runs_dir: Path, quick: bool, data_dir: str | None = None,
                     device: str = "auto") -> dict[str, Any]:
    """Train a recipe's seeds one after the other in this process, and make its row."""
    started = time.perf_counter()
    trained = [train_job(job, device, _overrides(quick, data_dir), runs_dir) for job in jobs_of(recipe, seeds)]
    return row_of(recipe, seeds, trained, runs_dir, quick, time.perf_counter() - started)


def reproduce_on_ray(recipes: Sequence[Recipe], seeds: int, runs_dir: Path, quick: bool, data_dir: str | None,
                     device: str, address: str | None, cpus_per_run: int = 1, log=print) -> list[dict[str, Any]]:
    """Every (recipe, seed) training as a Ray task, all at once, on a local Ray instance or the cluster at
    `address`; the rows are made as `reproduce_recipe` makes them. A row's wall time is the sum of its
    trainings' (they overlap)."""
    from mnistlab.cluster import connect

    jobs = {recipe.name: jobs_of(recipe, seeds) for recipe in recipes}
    overrides = _overrides(quick, data_dir)
    with connect(address) as ray:
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=1 if device.startswith("cuda") else 0)(train_job)
        futures = {name: [task.remote(job, device, overrides, runs_dir.resolve(), cpus_per_run) for job in batch]
                   for name, batch in jobs.items()}
        log(f"{sum(map(len, futures.values()))} trainings submitted to Ray "
            f"({ray.cluster_resources().get('CPU', 0):.0f} CPUs, {cpus_per_run} per training)")
        trained = {name: ray.get(refs) for name, refs in futures.items()}
    rows = []
    for recipe in recipes:
        done = trained[recipe.name]
        seconds = sum(t.run.status().get("wall_seconds", 0.0) for t in done)
        rows.append(row_of(recipe, seeds, done, runs_dir, quick, seconds))
    return rows


def _overrides(quick: bool, data_dir: str | None) -> dict[str, Any]:
    return {**(QUICK if quick else {}), **({"data_dir": data_dir} if data_dir else {})}


def _ensemble_figures(members, out: Path) -> dict[str, float]:
    from mnistlab.ensemble import create_ensemble, evaluate_ensemble

    ensemble_dir = create_ensemble([m.path for m in members], out)
    return _figures(None, evaluate_ensemble(ensemble_dir, members[0].settings().get("data_dir")))


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| recipe | published | mnistlab (mean ± std) | seeds | epochs | wall time | device |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        keys = [k for k in METRICS if k in r["published"] or (not r["published"] and k == "test_accuracy")]
        published = ", ".join(f"{k.replace('_accuracy', '')} {_percent(v) if 'loss' not in k else f'{v:.4f}'}"
                              for k, v in r["published"].items()) or "none published"
        ours = []
        for k in keys:
            m = r["mnistlab"].get(k)
            if m:
                scale, digits, unit = (1, 4, "") if "loss" in k else (100, 2, "%")
                value = f"{scale * m['mean']:.{digits}f}{unit}"
                if r["seeds"] > 1:  # one seed has no spread to show
                    value += f" ± {scale * m['std']:.{digits}f}"
                ours.append(f"{k.replace('_accuracy', '')} {value}")
        lines.append(f"| {r['recipe']}{' (quick)' if r['quick'] else ''} | {published} | {', '.join(ours)} | "
                     f"{r['seeds']} | {r['epochs']} | {r['wall_seconds']:.0f} s | {r['device']} |")
    return "\n".join(lines) + "\n"


def machines_line(rows: Sequence[dict[str, Any]]) -> str:
    """What the rows ran on: a table built over several invocations can mix machines, and wall times only
    compare within one."""
    recipes_by_machine: dict[str, list[str]] = {}
    for r in rows:
        recipes_by_machine.setdefault(r.get("machine", "machine not recorded"), []).append(r["recipe"])
    if len(recipes_by_machine) == 1:
        return next(iter(recipes_by_machine))
    return "; ".join(f"{machine}: {', '.join(names)}" for machine, names in recipes_by_machine.items())


def default_recipes() -> list[Recipe]:
    """Every recipe but the records: those are measured for time to accuracy by bench/time_to_accuracy.py."""
    return [r for r in map(load_recipe, list_recipes()) if not r.is_record]


def _merge_rows(previous: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the rows of recipes not re-run this time, so a table can be built up over several invocations."""
    if not previous.is_file():
        return rows
    fresh = {r["recipe"]: r for r in rows}
    merged = [fresh.pop(r["recipe"], r) for r in json.loads(previous.read_text())]
    return merged + [r for r in rows if r["recipe"] in fresh]


def reproduce(names: Sequence[str] | None = None, seeds: int = 1, quick: bool = False,
              runs_dir: str | os.PathLike = "runs/reproduce", out: str | os.PathLike | None = None,
              data_dir: str | None = None, log=print, device: str = "auto", ray: bool = False,
              address: str | None = None, cpus_per_run: int = 1) -> list[dict[str, Any]]:
    """Run the recipes (by default all but the records, which bench/time_to_accuracy.py measures) on
    `device` (auto: a GPU if there is one, with the recipes' [cuda] settings) and write reproduce.md /
    reproduce.json. With `ray` (or an `address`), every training is a Ray task (`reproduce_on_ray`).

    Rows already in `out`/reproduce.json for other recipes are kept; rows for the recipes run now are replaced.
    """
    recipes = [load_recipe(n) for n in names] if names else default_recipes()
    runs_dir = Path(runs_dir)
    if ray or address:
        rows = reproduce_on_ray(recipes, seeds, runs_dir, quick, data_dir, device, address, cpus_per_run, log)
    else:
        rows = []
        for recipe in recipes:
            log(f"reproducing {recipe.name}{' (quick)' if quick else ''} over {seeds} seed(s)...")
            rows.append(reproduce_recipe(recipe, seeds, runs_dir, quick, data_dir, device))
    out = Path(out) if out else runs_dir
    rows = _merge_rows(out / "reproduce.json", rows)
    table = format_table(rows)
    header = f"mnistlab reproduction, {time.strftime('%Y-%m-%d')}, {machines_line(rows)}\n\n"
    write_text(out / "reproduce.md", header + table)
    write_json(out / "reproduce.json", rows)
    log(header + table)
    return rows
