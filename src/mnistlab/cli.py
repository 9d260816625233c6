"""The `mnistlab` command: parses arguments and calls the library; nothing here the Python API lacks.

Heavy modules (torch, matplotlib) are imported inside the command handlers so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import sys
import threading
import typing
from pathlib import Path

from mnistlab import choices
from mnistlab._version import __version__
from mnistlab.errors import MnistlabError
from mnistlab.runs import REPORT
from mnistlab.settings import CLI_GROUPS, TrainConfig

if typing.TYPE_CHECKING:
    from mnistlab.recipes import Recipe


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
              f"pixels {s['pixel_min']}-{s['pixel_max']} (mean {s['pixel_mean']:.2f}, std {s['pixel_std']:.2f})")
        print(f"  labels: {s['labels']}")
        width = max(len(c) for c in info["classes"])
        for name, count in zip(info["classes"], s["class_counts"]):
            print(f"  {name:<{width}}  {count:>6,}  {100 * count / s['count']:5.2f}%")


def cmd_data_show(args) -> None:
    from mnistlab import plots
    from mnistlab.data import load_dataset
    from mnistlab.data.dataset import select_samples

    dataset = load_dataset(args.name, args.data_dir)
    images, labels = dataset.split(args.split)
    indices = select_samples(len(images), args.indices, args.count, args.random, args.seed)
    if args.augment:
        from mnistlab.data.augment import preview_augmentation

        augmented = preview_augmentation(images[indices[0]], args.augment, copies=args.copies, seed=args.seed)
        plots.augmentation_preview(images[indices[0]], augmented, f"augment {args.augment}", args.out,
                                          f"{dataset.name} {args.split} #{indices[0]} "
                                          f"({dataset.class_names[labels[indices[0]]]}): {args.augment}")
    else:
        plots.sample_grid(images[indices], labels[indices], dataset.class_names, args.out,
                                 f"{dataset.name} ({args.split})", indices)
    print(f"wrote {args.out}")


# ---------------------------------------------------------------- models
def cmd_models(args) -> None:
    from mnistlab.config import parse_key_values
    from mnistlab.models import count_parameters, create_model, get_model_entry, list_models
    from mnistlab.models.user import is_reference
    from mnistlab.settings import USER_MODEL_SETTINGS

    if args.action == "show":
        from mnistlab.models.summary import format_summary

        model = create_model(args.name, import_code=True, **parse_key_values(args.option, "--option"))
        print(format_summary(model, args.name))
        own = USER_MODEL_SETTINGS if is_reference(args.name) else get_model_entry(args.name).train_settings
        if own:
            print("Trains with: " + ", ".join(f"{k} = {v}" for k, v in own.items())
                  + " (instead of the defaults tuned for batch-norm nets; a recipe, --config or flag overrides it)")
        return
    rows = [{"name": n, "parameters": count_parameters(create_model(n)), "description": get_model_entry(n).description}
            for n in list_models(args.pattern)]
    if args.json:
        return _print_json(rows)
    w0, w1 = max(len(r["name"]) for r in rows), max(len(f"{r['parameters']:,}") for r in rows)
    print(f"{'model':<{w0}}  {'params':>{w1}}  description")
    for r in rows:
        print(f"{r['name']:<{w0}}  {r['parameters']:>{w1},}  {r['description']}")


# ---------------------------------------------------------------- training
# One flag per setting, generated from the fields of TrainConfig (help, choices and group live there): setting
# name -> its flags (--field-name unless the field names others). Flags left out (None) do not override the
# config file or recipe.
TRAIN_FLAGS = {f.name: f.metadata["flags"] or (f"--{f.name.replace('_', '-')}",)
               for f in dataclasses.fields(TrainConfig)}


def _is_table(hint) -> bool:
    """Settings given as KEY=VALUE lists on the command line: a model's options, the augmentation."""
    return dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict


def _add_setting_flags(parser: argparse.ArgumentParser) -> dict[str, argparse._ArgumentGroup]:
    """Add a flag for every TrainConfig field to `parser`, in the field's group; returns the groups."""
    groups = {name: parser.add_argument_group(name) for name in CLI_GROUPS}
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta, hint, flags = f.metadata, hints[f.name], TRAIN_FLAGS[f.name]
        kwargs: dict = {"dest": f.name, "default": None, "help": meta["help"]}
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = meta["metavar"]
            if hint in (int, float):
                kwargs["type"] = hint
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
            if _is_table(hint) and len(flags) > 1:  # -o a=1 -o b=2: repeatable
                kwargs["action"] = "append"
        groups[meta["group"]].add_argument(*flags, **kwargs)
    return groups


def _train_overrides(args) -> dict:
    from mnistlab.config import parse_key_values

    overrides = {}
    hints = typing.get_type_hints(TrainConfig)
    for name, flags in TRAIN_FLAGS.items():
        value = getattr(args, name)
        if value is not None:
            table = _is_table(hints[name]) and value != "none"  # none: see config.from_dict
            overrides[name] = parse_key_values(value, flags[0]) if table else value
    overrides.update(parse_key_values(args.set, "--set"))
    return overrides


def _without_option(argv: list[str], flag: str) -> list[str]:
    """`argv` less `flag VALUE` / `flag=VALUE`."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif not arg.startswith(flag + "="):
            out.append(arg)
    return out


def _new_run_config(args) -> tuple[TrainConfig, Recipe | None]:
    """The settings `train` starts a new run with (the recipe's, or the config file's, then the flags), and
    the recipe, if one is named."""
    from mnistlab import training

    if args.recipe:
        from mnistlab.recipes import load_recipe

        recipe = load_recipe(args.recipe)
        return recipe.config(args.config, _train_overrides(args)), recipe
    return training.build_config(args.config, _train_overrides(args)), None


def cmd_train(args) -> None:
    from mnistlab import training
    from mnistlab.training import distributed

    if args.resume and (args.recipe or args.config):
        raise MnistlabError("--resume goes on with the run's own settings; --recipe and --config start a new run")
    if args.nproc is not None:  # the same command in N processes, through torchrun
        config = None if args.resume else _new_run_config(args)[0]
        raise SystemExit(distributed.launch(args.nproc, _without_option(args.argv, "--nproc"), config))
    progress = "quiet" if args.quiet else args.progress
    if args.resume:
        run = training.resume(args.resume, progress=progress, changes=_train_overrides(args))
    else:
        config, recipe = _new_run_config(args)
        if recipe is not None and recipe.ensemble > 1 and distributed.is_writer():
            print(f"note: {recipe.name} averages {recipe.ensemble} models and this trains one of them; "
                  f"mnistlab reproduce {recipe.name} trains them all and averages them", file=sys.stderr)
        if args.print_settings:
            from mnistlab.config import to_toml

            return print(to_toml(config), end="")
        run = training.train(config, args.runs_dir, args.name, progress)
    if not distributed.is_writer():  # rank 0 of several processes speaks for all
        return
    metrics = run.metrics()
    if args.json:
        return _print_json({"run": str(run.path), "state": run.state(), "metrics": metrics})
    print(_trained_line(metrics))
    print(f"run folder: {run.path}")


def _trained_line(metrics: dict) -> str:
    """What `train` ends with: the test figures, or for a run not tested (`--no-test`, or a dataset without
    a test set) the best validation accuracy."""
    epochs = f"{metrics['epochs']} epoch{'' if metrics['epochs'] == 1 else 's'}"
    done = f"({epochs}, {metrics['train_seconds']:.1f}s of training)"
    if "test_accuracy" not in metrics:
        if metrics.get("best_val_accuracy") is None:
            return f"not tested, no validation split {done}"
        best = f" (epoch {metrics['best_epoch']})" if metrics.get("best_epoch") else ""
        return f"not tested; best validation accuracy {metrics['best_val_accuracy']:.4f}{best}  {done}"
    tta = (f"  with test-time augmentation {metrics['test_accuracy_tta']:.4f}"
           if "test_accuracy_tta" in metrics else "")
    ece = f"  calibration error (ECE) {metrics['test_ece']:.4f}" if "test_ece" in metrics else ""
    return f"test accuracy {metrics['test_accuracy']:.4f}{tta}  test loss {metrics['test_loss']:.4f}{ece}  {done}"


def cmd_runs(args) -> None:
    from mnistlab.runs import list_runs

    rows = list_runs(args.runs_dir)
    if args.json:
        return _print_json(rows)
    if not rows:
        print(f"no runs in {args.runs_dir}")
        return
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    table = [("run", "dataset", "model", "params", "epochs", "best val", "test acc", "wall", "state")]
    table += [(r["name"], str(r["dataset"]), str(r["model"]), fmt(r["parameters"], ","), fmt(r["epochs"], "d"),
               fmt(r["best_val_accuracy"], ".4f"), fmt(r["test_accuracy"], ".4f"),
               "-" if r["wall_seconds"] is None else f"{r['wall_seconds']:.0f}s", r["state"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


# ---------------------------------------------------------------- evaluation and shipping
def _predictor(args):
    from mnistlab.predict import load
    from mnistlab.runs import find_run_path

    return load(find_run_path(args.run, args.runs_dir), model=args.model)


def cmd_evaluate(args) -> None:
    from mnistlab.evaluation import evaluate_saved, format_metrics
    from mnistlab.runs import find_run_path

    folder, dataset, result = evaluate_saved(find_run_path(args.run, args.runs_dir), args.split, args.out,
                                             args.data_dir, args.tta, args.model, args.dataset)
    if args.json:
        return _print_json(result)
    print(f"{folder.name} on {dataset} {args.split}{' with TTA' if args.tta else ''}: " + format_metrics(result))
    print("\nfigures: " + ", ".join(result["figures"].values()))


def cmd_plot(args) -> None:
    from mnistlab import show_curves

    show_curves(*args.runs, runs_dir=args.runs_dir, out=args.out)
    print(f"wrote {args.out}")


def _pixels(megapixels: float) -> int:
    if megapixels <= 0:
        raise MnistlabError(f"--max-megapixels must be positive, got {megapixels}")
    return int(megapixels * 1e6)


def cmd_predict(args) -> None:
    from mnistlab.data.inputs import InputLimits
    from mnistlab.predict import predict_files

    predictor = _predictor(args)
    results = predict_files(predictor, args.files, args.top_k, not args.no_preprocess, args.tta,
                            InputLimits(max_pixels=_pixels(args.max_megapixels)), keep_images=bool(args.out))
    if args.out:
        _prediction_grid([r for r in results if "error" not in r], args.out)
    if args.json:
        _print_json(results)
    else:
        for r in results:
            if "error" in r:
                continue
            for i, p in enumerate(r["predictions"]):
                where = r["file"] + (f"[{i}]" if len(r["predictions"]) > 1 else "")
                top = ", ".join(f"{t['name']} {t['probability']:.3f}" for t in p["top"])
                print(f"{where}: {p['name']} ({p['probability']:.1%})  top-{len(p['top'])}: {top}")
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"mnistlab: error: {r['error']}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


def _prediction_grid(results: list[dict], out: str) -> None:
    """The images of every answered file, with their predictions, as one figure."""
    import numpy as np

    from mnistlab import plots

    if not results:
        return
    images = np.concatenate([r.pop("images") for r in results])
    names = [Path(r["file"]).name + (f"[{i}]" if len(r["predictions"]) > 1 else "")
             for r in results for i in range(len(r["predictions"]))]
    plots.prediction_grid(images, [p for r in results for p in r["predictions"]], out, names=names)
    print(f"wrote {out}", file=sys.stderr)


def cmd_ensemble(args) -> None:
    from mnistlab.ensemble import create_ensemble, evaluate_ensemble

    out = create_ensemble(args.runs, args.out, args.runs_dir)
    result = evaluate_ensemble(out, args.data_dir, args.model)
    for source, accuracy in zip(args.runs, result["members"]):
        print(f"  member {source}: test accuracy {accuracy:.4f}")
    print(f"ensemble of {len(args.runs)}: test accuracy {result['accuracy']:.4f}  "
          f"test loss {result['loss']:.4f}")
    print(f"saved in {out}")


def cmd_export(args) -> None:
    from mnistlab.export import export

    path = export(_predictor(args), args.format, args.out)
    print(f"wrote {path}")


def cmd_report(args) -> None:
    from mnistlab.report import write_report
    from mnistlab.runs import find_run_path

    print(f"wrote {write_report(find_run_path(args.run, args.runs_dir), args.out, args.model, args.split)}")


def cmd_serve(args) -> None:
    from mnistlab.runs import find_run_path
    from mnistlab.serve import SERVER_LIMITS, serve

    limits = dataclasses.replace(SERVER_LIMITS, max_pixels=_pixels(args.max_megapixels))
    serve(find_run_path(args.run, args.runs_dir), args.host, args.port, args.device, int(args.max_upload_mb * 2**20),
          limits, args.model, tuple(args.cors), args.workers)


# ---------------------------------------------------------------- recipes
def cmd_recipes(args) -> None:
    from mnistlab.recipes import list_recipes, load_recipe

    if args.action == "show":
        return print(load_recipe(args.name).describe())
    recipes = [load_recipe(n) for n in list_recipes()]
    if args.json:
        return _print_json([{"name": r.name, "title": r.title, "source": r.source, "published": r.published,
                             "ensemble": r.ensemble, "target": r.target, "settings": r.settings,
                             "cuda": r.cuda} for r in recipes])
    width = max(len(r.name) for r in recipes)
    for r in recipes:
        print(f"{r.name:<{width}}  {r.title}\n{'':<{width}}  {r.figures()}")


def cmd_reproduce(args) -> None:
    from mnistlab.reproduce import reproduce

    reproduce(args.names or None, args.seeds, args.quick, args.runs_dir, args.out, args.data_dir,
              log=lambda m: print(m, flush=True), device=args.device, ray=args.ray, address=args.address,
              cpus_per_run=args.cpus_per_run)


def cmd_sweep(args) -> None:
    from mnistlab.config import parse_key_values
    from mnistlab.sweep import SweepSpec, resume_sweep, sweep

    log = lambda m: print(m, flush=True)  # noqa: E731
    if args.resume:
        folder = resume_sweep(args.resume, log=log)
    else:
        spec = SweepSpec(recipe=args.recipe, space=args.space, fixed=parse_key_values(args.set, "--set"),
                         trials=args.trials, metric=args.metric, search=args.search, scheduler=args.scheduler,
                         grace_epochs=args.grace_epochs, reduction_factor=args.reduction_factor,
                         cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                         concurrent=args.concurrent, seed=args.seed, address=args.address)
        folder = sweep(spec, args.runs_dir, args.name, log=log)
    if args.json:
        _print_json(folder.spec())


# ---------------------------------------------------------------- parser
TTA_HELP = ("test-time augmentation: average each image's logits with its 1-pixel shifts (and their mirrors, "
            "for models trained with --augment flip)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnistlab",
        description="Train, compare and ship classifiers for MNIST-family datasets (mnist, fashion-mnist, "
                    "kmnist, or a folder of IDX files).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    p.add_argument("name", nargs="?", help="with show: a zoo name, or your own model's path/to/file.py:function")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, e.g. -o hidden=[128,64] -o dropout=0.2 (repeatable)")
    p.add_argument("--pattern", help="list only names matching this glob, e.g. 'mlp*'")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("train", help="train a model; everything goes into a run folder",
                       description="Train a zoo model. Settings: defaults <- --recipe <- --config TOML <- flags.")
    p.add_argument("--config", help="TOML settings file (a run's settings.toml repeats that run)")
    p.add_argument("--recipe", help="a named recipe (`mnistlab recipes`) or a recipe TOML file")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted or stopped run from its last checkpoint; "
                   "with --epochs N, train a run (finished or not) to N epochs")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    p.add_argument("--name", help="run name (default: DATASET-MODEL); the folder is NAME-<n>")
    p.add_argument("--print-settings", action="store_true",
                   help="print every setting this would train with (as settings.toml) and stop")
    p.add_argument("--json", action="store_true", help="print the run folder and its final metrics as JSON")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train in N processes on this machine (DistributedDataParallel through torchrun: each "
                        "takes its share of every batch; on CPUs, of the cores); or start it with torchrun "
                        "--nproc-per-node N -m mnistlab train ...")
    g = _add_setting_flags(p)["engine"]
    g.add_argument("--progress", choices=choices.PROGRESS_MODES, default="auto")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting as settings.toml spells it, e.g. --set min_delta=0.001 (repeatable)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list the runs of a folder")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    runs_dir = argparse.ArgumentParser(add_help=False)
    runs_dir.add_argument("--runs-dir", default="runs", help="where to look for runs given by name")
    own_model = argparse.ArgumentParser(add_help=False)
    own_model.add_argument("--model", metavar="CODE",
                           help="for a run of your own model: the code that builds it, path/to/file.py:function "
                                "or package.module:function (mnistlab never imports code a checkpoint names)")
    p = sub.add_parser("evaluate", parents=[data_dir, runs_dir, own_model],
                       help="loss, accuracy, per-class metrics, confusion matrix and mistakes of a run")
    p.add_argument("run", help="run folder (or ensemble folder)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--dataset", help="evaluate on another dataset of the same classes instead of the run's own, e.g. "
                                     "uci-digits: real handwriting from outside MNIST (needs mnistlab[handwriting])")
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    p.add_argument("--out", help="folder for the figures (default: the run folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("plot", parents=[runs_dir], help="loss and accuracy curves of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("predict", parents=[runs_dir, own_model],
                       help="classify pictures (PNG, JPEG, BMP), .npy or IDX files")
    p.add_argument("run", help="run folder, ensemble folder or .safetensors checkpoint")
    p.add_argument("files", nargs="+", metavar="FILE", help="a picture, .npy or IDX file, or a folder of them")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--out", help="also save the images as the model saw them, with its answers, as one PNG")
    p.add_argument("--max-megapixels", type=float, default=25,
                   help="refuse pictures larger than this, before decoding them (default 25)")
    p.add_argument("--no-preprocess", action="store_true",
                   help="feed pictures' pixels as they are (no invert, crop, resize, centring)")
    p.add_argument("--tta", action="store_true", help=TTA_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ensemble", parents=[data_dir, runs_dir, own_model],
                       help="average the probabilities of several runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or names of runs in --runs-dir)")
    p.add_argument("--out", help="folder to save the ensemble in (default: a new ensemble-<n> in --runs-dir)")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("export", parents=[runs_dir, own_model],
                       help="export a run or ensemble (ONNX, TorchScript, safetensors)")
    p.add_argument("run")
    p.add_argument("--format", choices=choices.EXPORT_FORMATS, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", parents=[runs_dir, own_model],
                       help="a self-contained HTML report of a run or ensemble")
    p.add_argument("run")
    p.add_argument("--out", help=f"HTML file (default: RUN/{REPORT})")
    p.add_argument("--split", choices=("test", "val", "train"),
                   help="the data its figures are of (default: test, or val for a run trained with --no-test)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", parents=[runs_dir, own_model],
                       help="a draw-a-digit page and a JSON API over HTTP (needs [serve])")
    p.add_argument("run", help="run folder, ensemble folder or .safetensors checkpoint")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--max-upload-mb", type=float, default=10, help="largest request, in MiB (default 10)")
    p.add_argument("--max-megapixels", type=float, default=16,
                   help="refuse uploaded pictures larger than this, before decoding them (default 16)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="requests worked on at once, the others waiting their turn (default: one per core)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="let pages served from ORIGIN (e.g. https://example.org) call the API (repeatable; "
                        "default: none)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("recipes", help="list the recipes with their published figures, or show one's settings")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("name", nargs="?", help="with show: a recipe name or .toml file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_recipes)

    p = sub.add_parser("reproduce", parents=[data_dir], help="run recipes over seeds; table of ours vs published")
    p.add_argument("names", nargs="*", metavar="RECIPE", help="recipes to run (default: all but the records)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 epoch on 3,000 images: a smoke test, not a result")
    p.add_argument("--device", default="auto", help="auto (default: a GPU if there is one), cpu, cuda, cuda:N")
    p.add_argument("--runs-dir", default="runs/reproduce")
    p.add_argument("--out", help="folder for reproduce.md and reproduce.json (default: --runs-dir)")
    p.add_argument("--ray", action="store_true",
                   help="every (recipe, seed) training as a Ray task, all at once (needs [ray]); a local Ray "
                        "instance unless --address")
    p.add_argument("--address", help="with --ray: join a running Ray cluster (auto, HOST:PORT or ray://HOST:PORT)")
    p.add_argument("--cpus-per-run", type=int, default=1, help="with --ray: cores (and torch threads) per training")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("sweep", help="search a recipe's settings on Ray Tune (needs [ray]); each trial is a run",
                       description="Search settings with Ray Tune: every trial trains the recipe with sampled "
                                   "settings in its own run folder, is judged on validation data, and ASHA stops "
                                   "the poor ones early. Writes a table of trials and the best settings as a "
                                   "recipe file.")
    p.add_argument("--recipe", default="default", help="the recipe whose settings are searched (default: default)")
    p.add_argument("--space", action="append", default=[], metavar="SETTING=KIND:VALUES",
                   help="a setting to search: lr=loguniform:0.1:2, warmup=uniform:0:1, epochs=int:2:4, "
                        "batch_size=choice:128,256, model=grid:fastnet,allconv (repeatable), or a TOML file "
                        "with a [space] table of such strings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting every trial shares, over the recipe's, e.g. --set subset=10000 (repeatable)")
    p.add_argument("--trials", type=int, default=16, help="trials to run (default 16; a grid runs all its points)")
    p.add_argument("--metric", default="val_accuracy", choices=("val_accuracy", "val_loss"),
                   help="what trials are judged on (validation data; the best is tested once at the end)")
    p.add_argument("--search", default="random", choices=("random", "optuna", "grid"),
                   help="how settings are drawn (default random; optuna: TPE, learns from earlier trials)")
    p.add_argument("--scheduler", default="asha", choices=("asha", "none"),
                   help="asha (default): stop poor trials early, at 1, 3, 9... epochs; none: run every trial out")
    p.add_argument("--grace-epochs", type=int, default=1, help="ASHA: epochs every trial gets (default 1)")
    p.add_argument("--reduction-factor", type=int, default=3,
                   help="ASHA: keep the best 1/N of the trials at each rung (default 3)")
    p.add_argument("--cpus-per-trial", type=float, default=1,
                   help="cores per trial, and its torch threads (default 1: one trial per core)")
    p.add_argument("--gpus-per-trial", type=float, default=0,
                   help="GPUs per trial, a fraction for small nets (0.25: four trials share a GPU; default 0)")
    p.add_argument("--concurrent", type=int, default=0, help="at most this many trials at once (default: as "
                   "many as the cores allow)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (each trial keeps the recipe's seed)")
    p.add_argument("--address", help="join a running Ray cluster (auto, HOST:PORT or ray://HOST:PORT); default: "
                   "start Ray on this machine for the sweep")
    p.add_argument("--runs-dir", default="runs/sweeps", help="where sweep folders go (default runs/sweeps)")
    p.add_argument("--name", help="sweep name (default RECIPE-sweep); the folder is NAME-<n>")
    p.add_argument("--resume", metavar="SWEEP", help="go on with an interrupted sweep (finished trials are kept)")
    p.add_argument("--json", action="store_true", help="print the sweep's request and summary as JSON")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "command", None) == "models" and args.action == "show" and not args.name:
        parser.error("models show needs a model name, e.g. mnistlab models show allconv")
    if getattr(args, "command", None) == "recipes" and args.action == "show" and not args.name:
        parser.error("recipes show needs a recipe name, e.g. mnistlab recipes show keras-cnn")
    try:
        args.func(args)
    except MnistlabError as e:
        from mnistlab.training.distributed import is_writer, record_error

        if is_writer():  # of several processes (torchrun), rank 0 speaks for all
            print(f"mnistlab: error: {e}", file=sys.stderr, flush=True)
        record_error(str(e))  # for the launcher, said first: a recorded rank-0 message was said
        return 2
    except KeyboardInterrupt:
        print("mnistlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


def run() -> None:
    """The `mnistlab` command: `main`, then an exit that skips Python's teardown of every module and object.

    After torch (and the torch._dynamo its optimizers import) the teardown takes 0.6-1.2 s of nothing on a
    2-core CPU, a tenth of a quick `mnistlab train`. Everything is written by then (files atomically,
    TensorBoard's writer closed); the exit handlers run and the output is flushed first, and while any other
    thread still runs, the ordinary exit waits for it."""
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # what the ordinary exit runs first: libraries' handlers (logging, multiprocessing)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that left (| head), or a stream closed
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
