"""What a whole `mnistlab train` costs around its training: wall time and peak memory of the process.

Each recipe is trained by `mnistlab train --recipe R` in a process of its own, as a user runs it; the table
gives the process's wall time, the parts its run folder records (`run.json`'s phases: data and model, trainer
(the optimizer, whose first one in a process imports torch._dynamo, and the callbacks), training, calibration,
test with test-time augmentation, figures), the rest (start-up: Python, torch and mnistlab's imports, writing
the run folder, the exit), wall / training, and the process's peak resident memory (`wait4`'s
ru_maxrss: the whole process, its highest point, not a reading after warm-up). With `--repeats N` each recipe
is run N times: the times are medians, and the peak memory is the highest of the N with their median beside
it, since the same run can peak 100 MB or more apart from one time to the next (the allocator's and
oneDNN's buffers).

Prints Markdown, with whether issue 24's targets are met (the defaults' wall at most 1.25x their training,
every recipe's peak at most 600 MB), and writes it, with the raw figures, to bench/results/train_overhead.{md,json}.

    MNISTLAB_DATA=../shared/data python bench/train_overhead.py [--recipes default allconv-augment] [--set ...]
        [--repeats 3] [--keep RUNS_DIR]
"""

from __future__ import annotations

import argparse
import contextlib
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
from mnistlab.runs import RunFolder

PHASES = ("data and model", "trainer", "training", "calibration", "test", "figures")
# issue 24's targets: the defaults' wall at most this many times their training; every recipe's peak at most
WALL_OVER_TRAINING_TARGET = 1.25
PEAK_RSS_TARGET_MB = 600


def measure(recipe: str, runs_dir: Path, extra: list[str]) -> dict:
    """Train `recipe` in a child process: its wall time, peak RSS and recorded phases."""
    command = [sys.executable, "-m", "mnistlab", "train", "--recipe", recipe, "--runs-dir", str(runs_dir),
               "-q", "--json", *extra]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise SystemExit(f"train_overhead: {' '.join(command)} failed ({process.returncode})")
        out.seek(0)
        run = RunFolder(json.loads(out.read())["run"])
    phases = run.status()["phases"]
    row = {"recipe": Path(recipe).name.removesuffix(".toml"), "wall_seconds": wall,  # fast-99.5 keeps its .5
           "peak_rss_mb": usage.ru_maxrss / 1024, **phases}
    row["start-up and the rest"] = wall - sum(phases[p] for p in PHASES)
    row["wall_over_training"] = wall / phases["training"]
    return row


def summarize(measured: list[dict]) -> dict:
    """One row for the repeats of a recipe: median times, the highest peak memory and the median one."""
    row = {key: statistics.median(r[key] for r in measured) for key in measured[0] if key != "recipe"}
    row.update(recipe=measured[0]["recipe"], repeats=len(measured),
               peak_rss_mb=max(r["peak_rss_mb"] for r in measured),
               peak_rss_mb_median=statistics.median(r["peak_rss_mb"] for r in measured))
    return row


def format_table(rows: list[dict]) -> str:
    columns = [*PHASES, "start-up and the rest"]
    lines = ["| recipe | wall | " + " | ".join(columns) + " | wall / training | peak memory (highest; median) |",
             "|---|---:|" + "---:|" * len(columns) + "---:|---:|"]
    for r in rows:
        peak = f"{r['peak_rss_mb']:,.0f} MB"
        if r.get("repeats", 1) > 1:
            peak += f" ({r['peak_rss_mb_median']:,.0f} MB)"
        lines.append(f"| {r['recipe']} | {r['wall_seconds']:.1f} s | " + " | ".join(f"{r[c]:.1f} s" for c in columns)
                     + f" | {r['wall_over_training']:.2f}x | {peak} |")
    return "\n".join(lines) + "\n"


def format_targets(rows: list[dict]) -> str:
    """Whether the rows meet the targets: the defaults' wall / training, and every recipe's peak memory."""
    lines = []
    for r in rows:
        if r["recipe"] == "default":
            met = "met" if r["wall_over_training"] <= WALL_OVER_TRAINING_TARGET else "not met"
            lines.append(f"- the defaults' wall at most {WALL_OVER_TRAINING_TARGET}x their training: "
                         f"{r['wall_over_training']:.2f}x, {met}")
    over = [f"{r['recipe']} ({r['peak_rss_mb']:,.0f} MB)" for r in rows if r["peak_rss_mb"] > PEAK_RSS_TARGET_MB]
    lines.append(f"- every recipe's peak memory at most {PEAK_RSS_TARGET_MB} MB: "
                 + (f"not met by {', '.join(over)}" if over else "met"))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["default", "fast"])
    parser.add_argument("--set", action="append", default=[], metavar="FLAG",
                        help="a flag for every training, e.g. --set=--epochs=2 (keras-cnn trains up to 100 epochs; "
                             "repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each recipe (default 1)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--keep", metavar="RUNS_DIR",
                        help="train in RUNS_DIR and keep the runs (default: a temporary folder, removed)")
    args = parser.parse_args()
    with contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory() as runs_dir:
        rows, measured = [], {}
        for recipe in args.recipes:
            for _ in range(args.repeats):
                measured.setdefault(recipe, []).append(measure(recipe, Path(runs_dir), args.set))
                print(json.dumps(measured[recipe][-1]), file=sys.stderr, flush=True)
            rows.append(summarize(measured[recipe]))
    table = (f"`mnistlab train` around its training on {machine_summary()}, {time.strftime('%Y-%m-%d')}"
             f"{' (flags: ' + ' '.join(args.set) + ')' if args.set else ''}"
             f"{f', {args.repeats} runs of each' if args.repeats > 1 else ''}\n\n" + format_table(rows)
             + "\nIssue 24's targets:\n\n" + format_targets(rows))
    print(table)
    write_text(Path(args.out) / "train_overhead.md", table)
    write_json(Path(args.out) / "train_overhead.json", {"rows": rows, "runs": measured})


if __name__ == "__main__":
    main()
