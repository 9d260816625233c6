"""Time to accuracy of mnistlab's record recipes: per seed, the training seconds until the test accuracy
first reaches the recipe's target, checked at every epoch end (evaluation time is not counted).
A record is met when the mean accuracy reaches the target within the training seconds allowed on the device
used: the recipe's `cpu_seconds` on a CPU, its `h100_seconds` on a GPU. On a GPU, one untimed run of each
recipe comes first, so that CUDA's start-up and kernel selection are not counted against the first seed,
and the recipes train with their `[cuda]` settings there (CUDA graphs of whole steps).

Test accuracy here is what the recipe reports, the record named in advance: with test-time augmentation when
the recipe sets tta; the table gives the accuracy without it beside (the same float32 pass: its first view
is the image itself).
Prints a Markdown table and writes it, with every seed's curve, to bench/results/time_to_accuracy.{md,json}.

    MNISTLAB_DATA=../shared/data python bench/time_to_accuracy.py [--recipes fast fast-99.5] [--seeds 5]

To choose a record's settings without looking at the test set, `--split val` trains on 90% of the training
set and checks the held-out 10% instead, and `--set key=value ...` overrides the recipe's settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from mnistlab._io import write_json, write_text
from mnistlab.devices import device_description, machine_summary, resolve_device
from mnistlab.errors import MnistlabError
from mnistlab.recipes import Recipe, load_recipe, train_recipe
from mnistlab.training.callbacks import Callback


class AccuracyCurve(Callback):
    """After every epoch: cumulative training seconds and test (or validation) accuracy, measured outside
    the timed training."""

    def __init__(self, split: str):
        self.split, self.train_seconds, self.points, self.tta = split, 0.0, [], False

    def on_epoch_end(self, trainer, epoch, logs):
        self.train_seconds += logs["seconds"]
        data = trainer.data
        images, labels = (data.val_x, data.val_y) if self.split == "val" else (data.test_x, data.test_y)
        self.tta = trainer.config.tta
        logits = trainer.tested_view_logits(images)  # one float32 pass gives both: the first view is the image
        plain, reported = logits[0], logits.mean(0)
        self.points.append({"epoch": epoch, "train_seconds": self.train_seconds,
                            "test_accuracy": (reported.argmax(1) == labels).float().mean().item(),
                            "test_accuracy_without_tta": (plain.argmax(1) == labels).float().mean().item()})


def measure(recipe: Recipe, seed: int, runs_dir: str, device: str | None, split: str = "test",
            overrides: dict | None = None) -> dict:
    settings = {**(overrides or {}), "tensorboard": False, **({"validation": "split"} if split == "val" else {})}
    curve = AccuracyCurve(split)
    run = train_recipe(recipe, seed, device or "auto", settings, runs_dir, callbacks=[curve])
    target = recipe.target["test_accuracy"]
    reached = next((p["train_seconds"] for p in curve.points if p["test_accuracy"] >= target), None)
    return {"seed": seed, "seconds_to_target": reached, "train_seconds": curve.train_seconds,
            "final_test_accuracy": curve.points[-1]["test_accuracy"],
            "final_test_accuracy_without_tta": curve.points[-1]["test_accuracy_without_tta"], "tta": curve.tta,
            "curve": curve.points,
            "device": device_description(run.metrics()["device"])}


def seconds_allowed(target: dict, device: str) -> float:
    """The training seconds a record allows on this device (no limit where the recipe sets none)."""
    return target.get("cpu_seconds" if device.startswith("cpu") else "h100_seconds", float("inf"))


def summarize(recipe: Recipe, seeds: list[dict]) -> dict:
    target = recipe.target
    accuracies = [s["final_test_accuracy"] for s in seeds]
    times = [s["seconds_to_target"] for s in seeds if s["seconds_to_target"] is not None]
    train = [s["train_seconds"] for s in seeds]

    def mean_std(values):
        return (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0) if values else None

    accuracy, seconds = mean_std(accuracies), mean_std(train)
    without_tta = mean_std([s["final_test_accuracy_without_tta"] for s in seeds])
    met = (accuracy[0] >= target["test_accuracy"] and min(accuracies) >= target.get("every_seed", 0)
           and seconds[0] <= seconds_allowed(target, seeds[0]["device"]))
    return {"recipe": recipe.name, "target": target, "seeds": seeds, "accuracy": accuracy,
            "accuracy_without_tta": without_tta, "tta": seeds[0]["tta"],
            "train_seconds": seconds, "seconds_to_target": mean_std(times),
            "seeds_reaching_target": len(times), "met": met, "device": seeds[0]["device"]}


def format_table(rows: list[dict]) -> str:
    lines = ["| record | target | test accuracy (mean ± std) | worst seed | without TTA "
             "| training seconds (mean ± std) | seconds to target (seeds reaching it) | met | device |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        t = r["target"]
        target = f"{100 * t['test_accuracy']:.2f}%"
        if (limit := seconds_allowed(t, r["device"])) != float("inf"):
            target += f" in {limit:g} s ({'CPU' if r['device'].startswith('cpu') else 'H100'})"
        worst = min(s["final_test_accuracy"] for s in r["seeds"])
        to_target = (f"{r['seconds_to_target'][0]:.2f} ± {r['seconds_to_target'][1]:.2f} s"
                     if r["seconds_to_target"] else "never")
        plain = r["accuracy_without_tta"]
        plain = f"{100 * plain[0]:.2f}% ± {100 * plain[1]:.2f}" if r["tta"] else "(no TTA)"
        lines.append(f"| {r['recipe']} | {target} | {100 * r['accuracy'][0]:.2f}% ± {100 * r['accuracy'][1]:.2f} | "
                     f"{100 * worst:.2f}% | {plain} | {r['train_seconds'][0]:.2f} ± {r['train_seconds'][1]:.2f} s | "
                     f"{to_target} ({r['seeds_reaching_target']}/{len(r['seeds'])}) | "
                     f"{'yes' if r['met'] else 'no'} | {r['device']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["fast", "fast-99.5"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--device", help="cpu or cuda (default: the recipe's, i.e. auto)")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="val: hold out 10%% of the training set and measure on it (for choosing settings)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override recipe settings")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    from mnistlab.config import parse_key_values

    overrides = parse_key_values(args.set, "--set") if args.set else {}

    rows = []
    warm_up = resolve_device(args.device or "auto").type == "cuda"
    with tempfile.TemporaryDirectory() as runs_dir:
        for recipe in map(load_recipe, args.recipes):
            if warm_up:
                measure(recipe, 0, runs_dir, args.device, args.split, overrides)
            seeds = []
            for seed in range(args.seeds):
                seeds.append(measure(recipe, seed, runs_dir, args.device, args.split, overrides))
                print(f"{recipe.name} seed {seed}: {json.dumps({k: v for k, v in seeds[-1].items() if k != 'curve'})}",
                      file=sys.stderr, flush=True)
            rows.append(summarize(recipe, seeds))
    if args.split == "val" or overrides:
        print(format_table(rows) + f"(on the {args.split} split, with {overrides or 'the recipe settings'}; "
              "not a record: nothing written)")
        return
    table = f"Time to accuracy on {machine_summary()}, {args.seeds} seeds\n\n" + format_table(rows)
    print(table)
    write_text(Path(args.out) / "time_to_accuracy.md", table)
    write_json(Path(args.out) / "time_to_accuracy.json", rows)


if __name__ == "__main__":
    try:
        main()
    except MnistlabError as e:  # a bad recipe name, no CUDA, no data: one line, as the CLI gives it
        sys.exit(f"time_to_accuracy: error: {e}")
