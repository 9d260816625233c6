"""Does a recipe hold on real handwriting it never saw, and do its confidences mean what they say?

Each candidate (a recipe with a few settings changed) is trained per seed, then measured three ways: on
MNIST's own held-out images (the validation split with `--split val`, the test set otherwise), on
`uci-digits` (1,797 digits by 13 writers from outside MNIST, `data/handwriting.py`), and by the expected
calibration error (ECE, 15 bins) of its plain predictions on both (a run's temperature is fitted on its
validation split, so with `--split val` a calibrated candidate's MNIST ECE is measured where it was
fitted). Accuracies with and without test-time augmentation. Candidates are compared with `--split val`,
which holds out 10% of the training set and never looks at the test set; the chosen one is then measured
once on the test set.

Prints a Markdown table and writes it, with every seed's figures, to bench/results/robustness{_val}.{md,json}.

    MNISTLAB_DATA=../shared/data python bench/robustness.py --split val --seeds 2
    MNISTLAB_DATA=../shared/data python bench/robustness.py --candidates "no augmentation" "augmented (the default)"
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mnistlab
from mnistlab._io import write_json, write_text
from mnistlab.data.dataset import load_dataset
from mnistlab.data.handwriting import UCI_DIGITS
from mnistlab.devices import machine_summary
from mnistlab.errors import MnistlabError
from mnistlab.evaluation import evaluate, load_split
from mnistlab.recipes import load_recipe, train_recipe

# name -> (recipe, the settings changed): the default model's recipe with and without its augmentation (the
# models' own training settings, models/zoo.py), label smoothing and calibration; the default is "augmented"
CANDIDATES = {
    "no augmentation": ("default", {"augment": "none"}),
    "augmented (the default)": ("default", {}),
    "no augmentation, no label smoothing": ("default", {"augment": "none", "label_smoothing": 0.0}),
    "augmented, no label smoothing": ("default", {"label_smoothing": 0.0}),
    "augmented, not calibrated": ("default", {"calibrate": False}),
}


def measure(name: str, seed: int, split: str, runs_dir: str, handwriting) -> dict:
    recipe, changes = CANDIDATES[name]
    settings = {**changes, "tensorboard": False, "figures": False}
    if split == "val":
        settings.update(validation="split", test=False)
    run = train_recipe(load_recipe(recipe), seed, "auto", settings, runs_dir)
    model = mnistlab.load(run.path)
    images, labels = load_split(run.dataset_source(), split, run.settings())
    row = {"candidate": name, "seed": seed, "train_seconds": run.metrics()["train_seconds"]}
    for label, (x, y) in (("mnist", (images, labels)), ("handwriting", handwriting)):
        plain = evaluate(model, x, y)
        row[f"{label}_accuracy"], row[f"{label}_ece"] = plain["accuracy"], plain["ece"]
        row[f"{label}_accuracy_tta"] = evaluate(model, x, y, tta=True)["accuracy"]
    return row


FIGURES = ("mnist_accuracy", "mnist_accuracy_tta", "handwriting_accuracy", "handwriting_accuracy_tta", "mnist_ece",
           "handwriting_ece")


def summarize(rows: list[dict]) -> list[dict]:
    table = []
    for name in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == name]
        summary = {"candidate": name, "seeds": len(mine), "train_seconds": statistics.fmean(
            r["train_seconds"] for r in mine)}
        for key in FIGURES:
            values = [r[key] for r in mine]
            summary[key] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        table.append(summary)
    return table


def format_table(summaries: list[dict], split: str) -> str:
    held = "validation split" if split == "val" else "test set"
    lines = [f"| candidate | seeds | MNIST {held} | with TTA | real handwriting (uci-digits) | with TTA | "
             f"ECE, MNIST {held} | ECE, handwriting | training |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def pct(pair):
        return f"{100 * pair[0]:.2f}% ± {100 * pair[1]:.2f}"

    for s in summaries:
        lines.append(f"| {s['candidate']} | {s['seeds']} | {pct(s['mnist_accuracy'])} | "
                     f"{pct(s['mnist_accuracy_tta'])} | {pct(s['handwriting_accuracy'])} | "
                     f"{pct(s['handwriting_accuracy_tta'])} | {s['mnist_ece'][0]:.4f} | "
                     f"{s['handwriting_ece'][0]:.4f} | {s['train_seconds']:.1f} s |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES),
                        metavar="NAME", help=f"some of: {'; '.join(CANDIDATES)}")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="val: train on 90%% of the training set and measure the held-out 10%% (for choosing)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    data = load_dataset(UCI_DIGITS)
    handwriting = (data.test_images, data.test_labels)
    rows = []
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in args.candidates:
            for seed in range(args.seeds):
                rows.append(measure(name, seed, args.split, runs_dir, handwriting))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    summaries = summarize(rows)
    table = (f"Robustness and calibration on {machine_summary()}, {time.strftime('%Y-%m-%d')} "
             f"({'validation split: for choosing' if args.split == 'val' else 'test set'})\n\n"
             + format_table(summaries, args.split))
    print(table)
    stem = "robustness" + ("_val" if args.split == "val" else "")
    write_text(Path(args.out) / f"{stem}.md", table)
    write_json(Path(args.out) / f"{stem}.json", {"summaries": summaries, "rows": rows})


if __name__ == "__main__":
    try:
        main()
    except MnistlabError as e:
        sys.exit(f"robustness: error: {e}")
