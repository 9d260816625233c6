"""Training throughput: mnistlab against a conventional PyTorch loop and the pure training step.

For each tutorial model at its tutorial batch size, all doing the same computation (the tutorial's optimizer
and loss, no weight decay or label smoothing) on the same images: mnistlab's trainer, the pure training step
(batches made beforehand, nothing else timed), and a conventional loop (a Dataset returning one normalized
image, DataLoader(shuffle=True)). mnistlab and the pure step share a process and take turns epoch by epoch, so
machine noise hits both alike; the conventional loop runs in its own process. Each rate is the best whole
epoch after a warm-up, over --repeats processes: on a shared machine, noise only ever slows a run. The ratio
to the pure step is taken within each process (whose two rates met the same machine) and the median over
processes reported; whole processes on this VM differ by 15-40% in speed.
Prints a Markdown table and writes it, with the raw numbers, to bench/results/throughput.{md,json}
(throughput_cuda.* with --device cuda).

    MNISTLAB_DATA=../shared/data python bench/throughput.py [--models linear mlp] [--samples 20000] [--repeats 3]

`--device cuda` measures on a GPU: mnistlab then replays each step as a CUDA graph (`cuda_graph = true`, as
the records' GPU settings do), the pure step runs eagerly on batches already on the GPU, and the conventional
loop moves each batch there (`x.to(device)`). Peak memory is then the GPU's (max_memory_allocated).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

# model -> the tutorial's batch size and optimizer
TUTORIAL = {
    "linear": (128, "adam"), "mlp": (128, "adam"), "lenet5": (256, "sgd"), "cnn": (128, "adam"),
    "keras-cnn": (128, "adam"), "allconv": (64, "adam"),
}


def same_math(batch: int, optimizer: str) -> dict:
    """mnistlab settings that do the conventional loop's computation: its optimizer and learning rate, no
    weight decay, momentum or label smoothing."""
    return {"batch_size": batch, "optimizer": optimizer, "lr": 1e-3 if optimizer == "adam" else 0.1,
            "momentum": 0.0, "weight_decay": 0.0, "label_smoothing": 0.0}


def best_epoch_rates(epochs: dict, samples: int, seconds: float = 4.0) -> dict[str, float]:
    """Best samples/s of whole epochs for each of `epochs` (name -> run one epoch), after one warm-up epoch
    each, taking turns until each has been timed for `seconds` (at least one epoch)."""
    for run_epoch in epochs.values():
        run_epoch()
    best, spent = dict.fromkeys(epochs, 0.0), dict.fromkeys(epochs, 0.0)
    while min(spent.values()) < seconds:
        for name, run_epoch in epochs.items():
            start = time.perf_counter()
            run_epoch()
            elapsed = time.perf_counter() - start
            spent[name] += elapsed
            best[name] = max(best[name], samples / elapsed)
    return best


def peak_mb(device: str = "cpu") -> float:
    """The process's peak resident memory, or on a GPU the peak of the memory torch allocated there."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so that an epoch's time is its whole time."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def mnistlab_epoch(model: str, batch: int, optimizer: str, samples: int, device: str = "cpu"):
    from mnistlab.training import Trainer, build_config, prepare_training

    config = build_config(overrides={"model": model, "subset": samples, "validation": "none", "tensorboard": False,
                                     "epochs": 10_000, "schedule": "constant", "device": device,
                                     "cuda_graph": device.startswith("cuda"), **same_math(batch, optimizer)})
    _, net, splits = prepare_training(config)
    trainer = Trainer(net, config, splits)
    epoch_numbers = iter(range(1, 10_000))
    return lambda: trainer.train_one_epoch(next(epoch_numbers))


def pure_epoch(model: str, batch: int, optimizer: str, samples: int, device: str = "cpu"):
    """Training steps alone: the same images, model and engine settings as the trainer, but the batches are
    made beforehand (float, in the model's memory format), so no indexing, conversion or augmentation is
    timed. The ceiling for any data path."""
    import torch
    import torch.nn.functional as F

    from mnistlab.data import load_dataset
    from mnistlab.models import create_model
    from mnistlab.models.inference import autocast_context
    from mnistlab.training import TrainConfig
    from mnistlab.training.optim import build_optimizer
    from mnistlab.training.trainer import training_autocast_dtype

    data = load_dataset("mnist")
    net = create_model(model)
    net.normalize.fit(data.train_images[:samples])
    conv = any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    images = torch.from_numpy(data.train_images[:samples]).unsqueeze(1).float()
    target = torch.device(device)
    net = net.to(target, memory_format=torch.channels_last if conv else torch.preserve_format)
    memory_format = torch.channels_last if conv else torch.contiguous_format
    batches = [(x.to(target).contiguous(memory_format=memory_format), y.to(target)) for x, y in
               zip(images.split(batch), torch.from_numpy(data.train_labels[:samples]).long().split(batch))]
    opt = build_optimizer(net, TrainConfig(**same_math(batch, optimizer)), target)
    dtype = training_autocast_dtype("auto", target, conv)  # the trainer's precision

    def epoch():
        for x, y in batches:
            with autocast_context(target, dtype):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        synchronize(device)

    return epoch


def conventional_epoch(model: str, batch: int, optimizer: str, samples: int, device: str = "cpu"):
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    from mnistlab.data import load_dataset
    from mnistlab.models import create_model

    data = load_dataset("mnist")
    images, labels = data.train_images[:samples], data.train_labels[:samples]

    class Digits(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            x = torch.from_numpy(images[i]).float().div(255).sub(0.1307).div(0.3081).unsqueeze(0)
            return x, int(labels[i])

    net = create_model(model, normalize="scale").net.to(device)  # the bare network: the Dataset normalizes
    opt = (torch.optim.Adam(net.parameters(), 1e-3) if optimizer == "adam"
           else torch.optim.SGD(net.parameters(), 0.1))
    loader = DataLoader(Digits(), batch_size=batch, shuffle=True)

    def epoch():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        synchronize(device)

    return epoch


def worker(kind: str, model: str, samples: int, device: str) -> None:
    """kind "engine": mnistlab and the pure step in one process, epochs interleaved, so machine noise hits
    both alike; peak memory is read before the pure step's batches exist. kind "conventional": its own."""
    batch, optimizer = TUTORIAL[model]
    if kind == "conventional":
        epoch = conventional_epoch(model, batch, optimizer, samples, device)
        print(json.dumps({"conventional": best_epoch_rates({"conventional": epoch}, samples)["conventional"]}))
        return
    mnistlab = mnistlab_epoch(model, batch, optimizer, samples, device)
    mnistlab()
    memory = peak_mb(device)
    pure = pure_epoch(model, batch, optimizer, samples, device)
    print(json.dumps({**best_epoch_rates({"mnistlab": mnistlab, "pure": pure}, samples), "peak_mb": memory}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(TUTORIAL), choices=list(TUTORIAL))
    parser.add_argument("--samples", type=int, default=20000, help="training images per measured epoch")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per kind; the best is kept")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: see above")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.samples, args.device)
    rows = []
    for model in args.models:
        result = {"model": model, "batch_size": TUTORIAL[model][0], "mnistlab": 0.0, "pure": 0.0,
                  "conventional": 0.0, "peak_mb": 0.0}
        ratios = []
        for _ in range(args.repeats):
            for kind in ("engine", "conventional"):
                out = subprocess.run([sys.executable, __file__, "--worker", kind, model, "--samples",
                                      str(args.samples), "--device", args.device],
                                     capture_output=True, text=True, check=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                for key, value in measured.items():
                    result[key] = max(result[key], value)
                if kind == "engine":
                    ratios.append(measured["mnistlab"] / measured["pure"])
        # the two rates of one process met the same machine; across processes the VM varies by 15-40%
        result["vs_pure_per_process"] = ratios
        result["vs_pure"] = statistics.median(ratios)
        rows.append(result)
        print(f"{model}: " + ", ".join(f"{k} {result[k]:,.0f}/s" for k in ("mnistlab", "conventional", "pure")),
              file=sys.stderr)
    from mnistlab._io import write_json, write_text
    from mnistlab.devices import machine_summary

    on_gpu = args.device.startswith("cuda")
    header = (f"Training samples/s on {machine_summary()}{' (on the GPU)' if on_gpu else ''}\n\n"
              "| model | batch | mnistlab | conventional loop | pure step | vs conventional | vs pure step "
              f"| mnistlab peak {'GPU ' if on_gpu else ''}memory |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['model']} | {r['batch_size']} | {r['mnistlab']:,.0f} | {r['conventional']:,.0f} | "
             f"{r['pure']:,.0f} | {r['mnistlab'] / r['conventional']:.2f}x | {r['vs_pure']:.0%} | "
             f"{r['peak_mb']:.0f} MB |" for r in rows]
    note = (f"\nRates: the best epoch over {args.repeats} processes. vs pure step: the median over those processes "
            "of the ratio within each, where mnistlab and the pure step took turns.\n")
    table = header + "\n".join(lines) + "\n" + note
    print(table)
    name = "throughput_cuda" if on_gpu else "throughput"
    write_text(Path(args.out) / f"{name}.md", table)
    write_json(Path(args.out) / f"{name}.json", rows)


if __name__ == "__main__":
    main()
