"""mnistlab beside the Keras tutorials it reproduces, in the same sitting on the same machine.

For each tutorial, its own Keras code (`keras_tutorials.py`, in a TensorFlow environment of its own) and
mnistlab's recipe of the same name are trained for the same number of epochs, each in a child process:
training samples per second, the training seconds until the test accuracy first reaches 99.0% and 99.5%
(checked after every epoch, outside the clock), the final test accuracy and the child's peak resident memory
(`wait4`: the whole process at its highest). mnistlab's record recipes (`fast`, `fast-99.5`) are timed beside
them: the ratio of the fastest Keras tutorial's time to an accuracy over the record's is the claim; absolute
seconds hold only for the machine named. One seed each.

    python -m venv ~/tf && ~/tf/bin/pip install tensorflow-cpu
    MNISTLAB_DATA=../shared/data python bench/peers/compare.py --keras-python ~/tf/bin/python

Prints Markdown and writes it, with every curve, to bench/results/peers.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the tutorial (keras_tutorials.py) -> mnistlab's recipe of it, and the epochs both train by default (the
# tutorials' own counts where short; keras-cnn runs up to 100 with early stopping, allconv 15)
PAIRS = {"keras-cnn": ("keras-cnn", 12), "allconv": ("allconv", 6), "vanilla-cnn": ("vanilla-cnn", 6),
         "keras-logreg": ("keras-logreg", 5)}
RECORDS = ("fast", "fast-99.5")
THRESHOLDS = (0.99, 0.995)


def run_child(command: list[str]) -> tuple[dict, float]:
    """The JSON a child process prints, and its peak RSS in MB."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"compare: {' '.join(command)} failed; run it alone to see why")
        out.seek(0)
        return json.loads(out.read().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def mnistlab_child(recipe: str, epochs: int | None, seed: int) -> None:
    """In the child: train the recipe, print its curve as keras_tutorials.py prints its own."""
    sys.path.insert(0, str(HERE.parent))
    from time_to_accuracy import AccuracyCurve

    from mnistlab.devices import machine_summary
    from mnistlab.recipes import load_recipe, train_recipe

    curve = AccuracyCurve("test")
    overrides = {"tensorboard": False, "figures": False, **({"epochs": epochs} if epochs else {})}
    with tempfile.TemporaryDirectory() as runs_dir:
        run = train_recipe(load_recipe(recipe), seed, "auto", overrides, runs_dir, callbacks=[curve])
        images = int(run.history()[0]["samples_per_s"] * run.history()[0]["seconds"])
    print(json.dumps({"recipe": recipe, "framework": machine_summary(), "train_images": images,
                      "curve": curve.points}))


def figures(result: dict, peak_mb: float) -> dict:
    curve = result["curve"]
    seconds = curve[-1]["train_seconds"]
    reached = {t: next((p["train_seconds"] for p in curve if p["test_accuracy"] >= t), None) for t in THRESHOLDS}
    return {"epochs": len(curve), "samples_per_s": result["train_images"] * len(curve) / seconds,
            "train_seconds": seconds, "final_test_accuracy": curve[-1]["test_accuracy"], "seconds_to": reached,
            "peak_rss_mb": peak_mb, "curve": curve, "framework": result["framework"]}


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _ratio(slow: float | None, fast: float | None) -> str:
    return f"{slow / fast:.1f}x" if slow and fast else "-"


def format_tables(pairs: list[dict], records: list[dict]) -> str:
    lines = ["| tutorial | epochs | samples/s: Keras | mnistlab | mnistlab faster | to 99.0%: Keras | mnistlab | "
             "test accuracy: Keras | mnistlab | peak memory: Keras | mnistlab |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in pairs:
        k, m = p["keras"], p["mnistlab"]
        lines.append(f"| {p['tutorial']} | {k['epochs']} | {k['samples_per_s']:,.0f} | {m['samples_per_s']:,.0f} | "
                     f"{m['samples_per_s'] / k['samples_per_s']:.2f}x | {_seconds(k['seconds_to'][0.99])} | "
                     f"{_seconds(m['seconds_to'][0.99])} | {100 * k['final_test_accuracy']:.2f}% | "
                     f"{100 * m['final_test_accuracy']:.2f}% | {k['peak_rss_mb']:,.0f} MB | "
                     f"{m['peak_rss_mb']:,.0f} MB |")
    lines += ["", "| to this test accuracy | fastest Keras tutorial | its time | mnistlab record | its time | "
              "mnistlab faster | peak memory: Keras | mnistlab |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for threshold in THRESHOLDS:
        timed = [p for p in pairs if p["keras"]["seconds_to"][threshold] is not None]
        best = min(timed, key=lambda p: p["keras"]["seconds_to"][threshold]) if timed else None
        record = min(records, key=lambda r: r["seconds_to"][threshold] or float("inf"))
        keras_seconds = best["keras"]["seconds_to"][threshold] if best else None
        lines.append(f"| {100 * threshold:.1f}% | {best['tutorial'] if best else 'none reached it'} | "
                     f"{_seconds(keras_seconds)} | {record['recipe']} | {_seconds(record['seconds_to'][threshold])} | "
                     f"{_ratio(keras_seconds, record['seconds_to'][threshold])} | "
                     f"{f'{best_peak:,.0f} MB' if (best_peak := best and best['keras']['peak_rss_mb']) else '-'} | "
                f"{record['peak_rss_mb']:,.0f} MB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-python", help="the Python of an environment with tensorflow-cpu")
    parser.add_argument("--tutorials", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--epochs", type=int, help="epochs of every pair (default: each pair's own, see PAIRS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnistlab", metavar="RECIPE", help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--out", default=str(HERE.parent / "results"))
    args = parser.parse_args()
    if args.mnistlab:
        return mnistlab_child(args.mnistlab, args.epochs, args.seed)
    if not args.keras_python:
        parser.error("--keras-python is required: the Python of an environment with tensorflow-cpu")
    from mnistlab._io import write_json, write_text
    from mnistlab.data.registry import resolve_data_root
    from mnistlab.devices import machine_summary

    data = resolve_data_root() / "mnist"
    me = [sys.executable, str(Path(__file__).resolve()), "--seed", str(args.seed)]
    pairs, records = [], []
    for tutorial in args.tutorials:
        recipe, default_epochs = PAIRS[tutorial]
        epochs = str(args.epochs or default_epochs)
        keras = figures(*run_child([args.keras_python, str(HERE / "keras_tutorials.py"), tutorial, "--data",
                                    str(data), "--epochs", epochs, "--seed", str(args.seed)]))
        mine = figures(*run_child([*me, "--mnistlab", recipe, "--epochs", epochs]))
        pairs.append({"tutorial": tutorial, "recipe": recipe, "keras": keras, "mnistlab": mine})
        print(f"{tutorial}: Keras {keras['samples_per_s']:,.0f} samples/s, {keras['final_test_accuracy']:.4f}; "
              f"mnistlab {mine['samples_per_s']:,.0f} samples/s, {mine['final_test_accuracy']:.4f}",
              file=sys.stderr, flush=True)
    for recipe in RECORDS:
        records.append({"recipe": recipe, **figures(*run_child([*me, "--mnistlab", recipe]))})
    header = (f"mnistlab beside the Keras tutorials on {machine_summary()}, {time.strftime('%Y-%m-%d')}; "
              f"{pairs[0]['keras']['framework']}; one seed, the same epochs for both sides\n\n")
    table = header + format_tables(pairs, records)
    print(table)
    write_text(Path(args.out) / "peers.md", table)
    write_json(Path(args.out) / "peers.json", {"pairs": pairs, "records": records})


if __name__ == "__main__":
    main()
