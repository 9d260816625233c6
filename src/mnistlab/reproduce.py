"""`mnistlab reproduce`: run recipes over seeds and tabulate mnistlab's figures beside the published ones."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from mnistlab._io import write_json, write_text
from mnistlab.recipes import Recipe, list_recipes, load_recipe, train_recipe

# --quick: enough to prove every recipe runs end to end, not to reproduce its figure.
QUICK = {"epochs": 1, "subset": 3000, "early_stopping": 0, "tensorboard": False}
METRICS = ("test_accuracy", "val_accuracy", "train_accuracy", "test_loss")


def _figures(run, ensemble_result: dict | None = None) -> dict[str, float]:
    if ensemble_result is not None:
        return {"test_accuracy": ensemble_result["accuracy"], "test_loss": ensemble_result["loss"]}
    metrics, history = run.metrics(), run.history()
    last = history[-1] if history else {}
    figures = {"test_accuracy": metrics["test_accuracy"], "test_loss": metrics["test_loss"],
               "train_accuracy": last.get("accuracy")}
    if metrics.get("best_val_accuracy") is not None:
        figures["val_accuracy"] = metrics["best_val_accuracy"]
    return figures


def reproduce_recipe(recipe: Recipe, seeds: int, runs_dir: Path, quick: bool, data_dir: str | None = None,
                     device: str = "auto") -> dict[str, Any]:
    from mnistlab.devices import device_description, machine_summary

    overrides = {**(QUICK if quick else {}), **({"data_dir": data_dir} if data_dir else {})}
    per_seed: list[dict[str, float]] = []
    started = time.perf_counter()
    ran_on = epochs = None
    for seed in range(seeds):
        if recipe.ensemble > 1:
            members = [train_recipe(recipe, 100 * seed + m, device, overrides, runs_dir, f"{recipe.name}-s{seed}-m{m}")
                       for m in range(recipe.ensemble)]
            per_seed.append(_ensemble_figures(members, runs_dir / f"{recipe.name}-s{seed}-ensemble"))
            run = members[-1]
        else:
            run = train_recipe(recipe, seed, device, overrides, runs_dir)
            per_seed.append(_figures(run))
        ran_on, epochs = device_description(run.metrics()["device"]), run.metrics()["epochs"]
    row = {"recipe": recipe.name, "title": recipe.title, "published": recipe.published, "seeds": seeds,
           "epochs": epochs, "wall_seconds": round(time.perf_counter() - started, 1), "device": ran_on,
           "machine": machine_summary(threads=False), "quick": quick, "mnistlab": {}}
    for key in METRICS:
        values = [f[key] for f in per_seed if f.get(key) is not None]
        if values:
            row["mnistlab"][key] = {"mean": statistics.fmean(values),
                                    "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return row


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
              data_dir: str | None = None, log=print, device: str = "auto") -> list[dict[str, Any]]:
    """Run the recipes (by default all but the records, which bench/time_to_accuracy.py measures) on
    `device` (auto: a GPU if there is one, with the recipes' [cuda] settings) and write reproduce.md /
    reproduce.json.

    Rows already in `out`/reproduce.json for other recipes are kept; rows for the recipes run now are replaced.
    """
    recipes = [load_recipe(n) for n in names] if names else default_recipes()
    runs_dir = Path(runs_dir)
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
