"""How sweeps and several-process training scale on this machine: the figures of docs/scaling.md.

1. Ray's fixed cost: starting and stopping a local instance.
2. A sweep of `--trials` trials of a recipe (no early stopping, one core each) with 1, 2, ... trials at once:
   its wall time, trials per minute, each trial's training seconds (from its run folder), and what each trial
   costs beyond its training (a Ray worker's start, imports, loading the data, Tune's scheduling, the
   evaluation), worked out as wall x concurrency / trials - training seconds.
3. From those, what a sweep of 1,000 such trials would take on K nodes of this size.
4. One training in 1 and in 2 processes (`mnistlab train --nproc N`, DistributedDataParallel over gloo).

Prints Markdown and writes it, with the raw figures, to bench/results/sweep_scaling.{md,json}.

    MNISTLAB_DATA=../shared/data python bench/sweep_scaling.py [--trials 8] [--concurrency 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistlab._io import write_json, write_text
from mnistlab.devices import machine_summary
from mnistlab.errors import MnistlabError
from mnistlab.runs import RunFolder, SweepFolder


def ray_start_seconds() -> float:
    from mnistlab.cluster import connect

    started = time.perf_counter()
    with connect():
        pass
    return time.perf_counter() - started


def measure_sweep(recipe: str, trials: int, concurrent: int, runs_dir: Path) -> dict:
    from mnistlab.sweep import SweepSpec, sweep

    spec = SweepSpec(recipe, ["lr=loguniform:0.2:0.6"], {}, trials=trials, scheduler="none", concurrent=concurrent)
    started = time.perf_counter()
    folder = sweep(spec, runs_dir, f"c{concurrent}", log=lambda m: print(m, file=sys.stderr, flush=True))
    wall = time.perf_counter() - started
    rows = json.loads(SweepFolder(folder).file(SweepFolder.TABLE_JSON).read_text())["trials"]
    runs = [RunFolder(r["run"]) for r in rows]
    train = [sum(h["seconds"] for h in run.history()) for run in runs]
    return {"concurrent": concurrent, "trials": trials, "wall_seconds": wall,
            "trials_per_minute": 60 * trials / wall, "train_seconds": statistics.fmean(train),
            "run_seconds": statistics.fmean(run.status()["wall_seconds"] for run in runs),
            "val_accuracy": statistics.fmean(r["val_accuracy"] for r in rows)}


def measure_processes(recipe: str, nproc: int, runs_dir: Path) -> dict:
    """One training of `recipe` in `nproc` processes, from the command line as a user runs it."""
    command = [sys.executable, "-m", "mnistlab", "train", "--recipe", recipe, "--runs-dir", str(runs_dir),
               "--name", f"p{nproc}", "-q", "--json"] + (["--nproc", str(nproc)] if nproc > 1 else [])
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - started
    metrics = json.loads(out)["metrics"]
    history = RunFolder(json.loads(out)["run"]).history()
    return {"processes": nproc, "wall_seconds": wall, "train_seconds": metrics["train_seconds"],
            "samples_per_s": statistics.fmean(h["samples_per_s"] for h in history),
            "test_accuracy": metrics["test_accuracy"]}


def format_tables(result: dict) -> str:
    sweeps, startup = result["sweeps"], result["ray_start_seconds"]
    lines = [f"Ray: starting and stopping a local instance takes {startup:.1f} s.", "",
             f"A sweep of {sweeps[0]['trials']} `{result['recipe']}` trials (one core each, no early stopping):", "",
             "| trials at once | sweep wall | trials/min | training per trial | run per trial | beyond training per "
             "trial | mean val accuracy |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in sweeps:
        lines.append(f"| {s['concurrent']} | {s['wall_seconds']:.1f} s | {s['trials_per_minute']:.1f} | "
                     f"{s['train_seconds']:.2f} s | {s['run_seconds']:.2f} s | {s['overhead_seconds']:.2f} s | "
                     f"{s['val_accuracy']:.4f} |")
    alone = sweeps[0]  # one trial at a time: the other core is Tune's, so this is a trial's own cost
    per_trial = alone["train_seconds"] + alone["overhead_seconds"]
    lines += ["", f"1,000 such trials at {per_trial:.1f} s of a core each (the first row: a trial's own cost), on "
              "worker nodes of 2 cores running a trial per core, Tune's driver on a head node of its own:", "",
              "| worker nodes | sweep time |", "|---:|---:|"]
    for nodes in (1, 4, 16, 64):
        seconds = startup + 1000 * per_trial / (2 * nodes)
        lines.append(f"| {nodes} | {seconds / 60:.1f} min |")
    if not result["processes"]:
        return "\n".join(lines) + "\n"
    lines += ["", f"One `{result['recipe']}` training in several processes (DistributedDataParallel, gloo):", "",
              "| processes | training | samples/s | whole command | test accuracy |", "|---:|---:|---:|---:|---:|"]
    for p in result["processes"]:
        lines.append(f"| {p['processes']} | {p['train_seconds']:.2f} s | {p['samples_per_s']:,.0f} | "
                     f"{p['wall_seconds']:.1f} s | {p['test_accuracy']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    result = {"machine": machine_summary(threads=False), "cores": os.cpu_count(), "recipe": args.recipe,
              "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as runs_dir:
        result["ray_start_seconds"] = ray_start_seconds()
        result["sweeps"] = []
        for concurrent in args.concurrency:
            s = measure_sweep(args.recipe, args.trials, concurrent, Path(runs_dir))
            s["overhead_seconds"] = (s["wall_seconds"] - result["ray_start_seconds"]) * concurrent / s["trials"] \
                - s["train_seconds"]
            result["sweeps"].append(s)
        result["processes"] = [measure_processes(args.recipe, n, Path(runs_dir)) for n in args.processes]
    table = f"Sweeps and processes on {result['machine']} ({result['cores']} cores), {result['date']}\n\n" \
        + format_tables(result)
    print(table)
    write_text(Path(args.out) / "sweep_scaling.md", table)
    write_json(Path(args.out) / "sweep_scaling.json", result)


if __name__ == "__main__":
    try:
        main()
    except MnistlabError as e:
        sys.exit(f"sweep_scaling: error: {e}")
