"""Where a record's training time goes on a device: milliseconds per training step of the trainer's own loop,
by batch size and by execution mode, on all of MNIST's training set. Modes: eager; graph (each whole step
replayed as one CUDA graph, `cuda_graph = true`); or a torch.compile mode (default, reduce-overhead, ...).

Small nets on a GPU are bound by launching kernels, not by arithmetic: the time per step barely grows with
the batch, so larger batches or CUDA graphs are what shorten an epoch. Each line: the first epoch (start-up,
kernel selection, compilation, graph capture) and the best of the timed epochs after it.

    MNISTLAB_DATA=../shared/data python bench/step_time.py --recipe fast --device cuda --batch-sizes 128 512 \\
        --modes eager graph reduce-overhead
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from mnistlab.devices import resolve_device
from mnistlab.errors import MnistlabError
from mnistlab.recipes import load_recipe
from mnistlab.training import Trainer, build_config, prepare_training


def epoch_seconds(settings: dict, epochs: int) -> tuple[float, list[float], int]:
    """(first epoch's seconds, the timed epochs' seconds, steps per epoch) of a fresh trainer."""
    config = build_config(overrides=settings)
    _, model, data = prepare_training(config)
    trainer = Trainer(model, config, data)
    times = []
    for epoch in range(1, epochs + 2):
        started = time.perf_counter()
        trainer.train_one_epoch(epoch)  # ends in the epoch's one host sync
        times.append(time.perf_counter() - started)
    return times[0], times[1:], trainer.steps_per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="fast", help="the settings measured (model, optimizer, augmentation)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--modes", nargs="+", default=["eager", "graph"],
                        help="eager, graph (CUDA graphs of whole steps) or a torch.compile mode")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the first")
    args = parser.parse_args()
    device = resolve_device(args.device)
    recipe = load_recipe(args.recipe)
    print(f"{recipe.name} on {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"torch {torch.__version__}\n")
    print("| batch | mode | steps/epoch | first epoch (s) | best epoch (s) | ms/step | samples/s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for batch_size in args.batch_sizes:
        for mode in args.modes:
            compiled = mode not in ("eager", "graph")
            settings = {**recipe.settings_for(str(device)), "device": str(device), "batch_size": batch_size,
                        "epochs": 100, "validation": "none", "cuda_graph": mode == "graph", "compile": compiled,
                        "compile_mode": mode if compiled else "default"}
            try:
                first, timed, steps = epoch_seconds(settings, args.epochs)
            except Exception as e:  # a mode this torch or device cannot run: say so, measure the rest
                print(f"| {batch_size} | {mode} | failed: {type(e).__name__}: {str(e).splitlines()[0][:120]} |||||")
                continue
            best = min(timed)
            print(f"| {batch_size} | {mode} | {steps} | {first:.3f} | {best:.3f} | {1000 * best / steps:.3f} | "
                  f"{steps * batch_size / best:,.0f} |", flush=True)


if __name__ == "__main__":
    try:
        main()
    except MnistlabError as e:
        sys.exit(f"step_time: error: {e}")
