"""The `mnistlab` command: parses arguments and calls the library; nothing here the Python API lacks.

Heavy modules (torch, matplotlib) are imported inside the command handlers so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from mnistlab.errors import ConfigError, MnistlabError


def _parse_indices(text: str) -> list[int]:
    """"0,5,10-14" -> [0, 5, 10, 11, 12, 13, 14]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise ConfigError(f"--indices {text!r} is not a list like 0,5,10-14") from None
    return out


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2))


# ---------------------------------------------------------------- data
def cmd_data_info(args) -> None:
    from mnistlab.data import describe_dataset, load_dataset

    info = describe_dataset(load_dataset(args.name, args.data_dir))
    if args.json:
        return _print_json(info)
    print(f"{info['name']}  ({info['source']})")
    for split, s in info["splits"].items():
        print(f"\n{split}: {s['count']:,} images of {s['image_shape'][0]}x{s['image_shape'][1]} {s['dtype']}, "
              f"pixels {s['pixel_min']}-{s['pixel_max']} (mean {s['pixel_mean']}, std {s['pixel_std']})")
        print(f"  labels: {s['labels']}")
        width = max(len(c) for c in info["classes"])
        for name, count in zip(info["classes"], s["class_counts"]):
            print(f"  {name:<{width}}  {count:>6,}  {100 * count / s['count']:5.2f}%")


def cmd_data_show(args) -> None:
    import numpy as np

    from mnistlab import plots
    from mnistlab.data import load_dataset

    dataset = load_dataset(args.name, args.data_dir)
    images, labels = dataset.split(args.split)
    if args.indices:
        indices = _parse_indices(args.indices)
    elif args.random:
        indices = np.random.default_rng(args.seed).choice(len(images), args.count, replace=False).tolist()
    else:
        indices = list(range(min(args.count, len(images))))
    bad = [i for i in indices if not 0 <= i < len(images)]
    if bad:
        raise ConfigError(f"--indices {bad[0]} is out of range: the {args.split} split has {len(images)} images")
    if args.augment:
        from mnistlab.data.augment import preview_augmentation

        augmented = preview_augmentation(images[indices[0]], args.augment, copies=args.copies, seed=args.seed)
        path = plots.augmentation_preview(images[indices[0]], augmented, f"augment {args.augment}", args.out,
                                          f"{dataset.name} {args.split} #{indices[0]} "
                                          f"({dataset.class_names[labels[indices[0]]]}): {args.augment}")
    else:
        path = plots.sample_grid(images[indices], labels[indices], dataset.class_names, args.out,
                                 f"{dataset.name} ({args.split})", indices)
    print(f"wrote {path}")


# ---------------------------------------------------------------- models
def _model_options(pairs: list[str]) -> dict:
    from mnistlab.config import parse_key_values

    return parse_key_values(pairs, "--option")


def cmd_models(args) -> None:
    from mnistlab.models import count_parameters, create_model, get_model_entry, list_models

    if args.action == "show":
        from mnistlab.models.summary import format_summary

        model = create_model(args.name, **_model_options(args.option))
        print(format_summary(model, args.name))
        return
    names = list_models(args.pattern)
    rows = [(n, f"{count_parameters(create_model(n)):,}", get_model_entry(n).description) for n in names]
    if args.json:
        return _print_json([{"name": n, "parameters": int(p.replace(",", "")), "description": d}
                            for n, p, d in rows])
    w0, w1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"{'model':<{w0}}  {'params':>{w1}}  description")
    for name, params, desc in rows:
        print(f"{name:<{w0}}  {params:>{w1}}  {desc}")


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnistlab",
        description="Train, compare and ship classifiers for MNIST-family datasets (mnist, fashion-mnist, "
                    "kmnist, or a folder of IDX files).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_dir = argparse.ArgumentParser(add_help=False)
    data_dir.add_argument("--data-dir", help="where datasets live (default: $MNISTLAB_DATA, else ~/.cache/mnistlab)")

    data = sub.add_parser("data", help="look at a dataset").add_subparsers(dest="action", metavar="ACTION",
                                                                           required=True)
    p = data.add_parser("info", parents=[data_dir], help="counts, shapes, pixel range and class balance")
    p.add_argument("name", help="dataset name or folder of IDX files")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_data_info)
    p = data.add_parser("show", parents=[data_dir], help="save a labelled grid of samples as PNG")
    p.add_argument("name", help="dataset name or folder of IDX files")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--split", choices=("train", "test"), default="train")
    p.add_argument("--indices", help="which samples, e.g. 0,5,10-14 (default: the first --count)")
    p.add_argument("--count", type=int, default=25, help="how many samples (default 25)")
    p.add_argument("--random", action="store_true", help="pick --count samples at random (see --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", help="show the first sample and augmented copies, e.g. rotate=10,zoom=0.1,shear=0.3")
    p.add_argument("--copies", type=int, default=8, help="augmented copies with --augment (default 8)")
    p.set_defaults(func=cmd_data_show)

    p = sub.add_parser("models", help="list the model zoo, or show one model's summary")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("name", nargs="?", help="with show: the model name")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, e.g. -o hidden=[128,64] -o dropout=0.2 (repeatable)")
    p.add_argument("--pattern", help="list only names matching this glob, e.g. 'mlp*'")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=cmd_models)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnistlab")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "models" and args.action == "show" and not args.name:
        parser.error("models show needs a model name, e.g. mnistlab models show allconv")
    try:
        args.func(args)
    except MnistlabError as e:
        print(f"mnistlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
