"""Training throughput: mnistlab against a conventional PyTorch loop and the pure training step.

For each tutorial model at its tutorial batch size, three measurements run in separate processes (so peak
memory is each one's own): mnistlab's trainer (one epoch on a subset), a conventional loop (a Dataset
returning one normalized image, DataLoader(shuffle=True)), and pure steps on one in-memory batch. Each is
repeated (--repeats, interleaved) and the best rate kept: on a shared machine, noise only ever slows a run.
Prints a Markdown table and writes it, with the raw numbers, to bench/results/throughput.{md,json}.

    MNISTLAB_DATA=../shared/data python bench/throughput.py [--models linear mlp] [--samples 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

# model -> the tutorial's batch size and optimizer
TUTORIAL = {
    "linear": (128, "adam"), "mlp": (128, "adam"), "lenet5": (256, "sgd"), "cnn": (128, "adam"),
    "keras-cnn": (128, "adam"), "allconv": (64, "adam"),
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_mnistlab(model: str, batch: int, optimizer: str, samples: int) -> float:
    import torch

    from mnistlab.data import load_dataset
    from mnistlab.models import create_model
    from mnistlab.training import Trainer, build_config
    from mnistlab.training.loader import split_dataset

    config = build_config(overrides={"model": model, "batch_size": batch, "optimizer": optimizer, "lr": 1e-3,
                                     "subset": samples, "validation": "none", "tensorboard": False,
                                     "epochs": 2, "schedule": "constant"})
    data = load_dataset("mnist")
    splits = split_dataset(data, "none", 0.1, 0, samples, torch.device("cpu"))
    net = create_model(model)
    net.normalize.fit(splits.train_x)
    trainer = Trainer(net, config, splits)
    trainer.train_one_epoch(1)  # warm-up
    return trainer.train_one_epoch(2)["samples_per_s"]


def measure_conventional(model: str, batch: int, optimizer: str, samples: int) -> float:
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

    net = create_model(model, normalize="scale").net  # the bare network: normalization is in the Dataset
    opt = (torch.optim.Adam(net.parameters(), 1e-3) if optimizer == "adam"
           else torch.optim.SGD(net.parameters(), 0.1))
    loader = DataLoader(Digits(), batch_size=batch, shuffle=True)

    def epoch():
        seen, start = 0, time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        return seen / (time.perf_counter() - start)

    epoch()
    return epoch()


def measure_pure(model: str, batch: int, optimizer: str, seconds: float = 3.0) -> float:
    """Steps on one in-memory batch in mnistlab's engine settings: the ceiling for any data path."""
    import torch
    import torch.nn.functional as F

    from mnistlab.models import create_model
    from mnistlab.models.inference import autocast_context
    from mnistlab.training import TrainConfig
    from mnistlab.training.optim import build_optimizer

    net = create_model(model)
    conv = any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    x = torch.randint(0, 256, (batch, 1, 28, 28)).float()
    if conv:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = build_optimizer(net, TrainConfig(optimizer=optimizer, lr=1e-3), torch.device("cpu"))
    dtype = torch.bfloat16 if conv and torch.ops.mkldnn._is_mkldnn_bf16_supported() else None

    def step():
        with autocast_context(torch.device("cpu"), dtype):
            logits = net(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += batch
    return n / (time.perf_counter() - start)


def worker(kind: str, model: str, samples: int) -> None:
    batch, optimizer = TUTORIAL[model]
    fn = {"mnistlab": measure_mnistlab, "conventional": measure_conventional, "pure": measure_pure}[kind]
    rate = fn(model, batch, optimizer) if kind == "pure" else fn(model, batch, optimizer, samples)
    print(json.dumps({"samples_per_s": rate, "peak_mb": peak_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(TUTORIAL), choices=list(TUTORIAL))
    parser.add_argument("--samples", type=int, default=20000, help="training images per measured epoch")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per kind; the best is kept")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.samples)
    rows = []
    for model in args.models:
        result = {"model": model, "batch_size": TUTORIAL[model][0]}
        for _ in range(args.repeats):
            for kind in ("mnistlab", "conventional", "pure"):
                out = subprocess.run([sys.executable, __file__, "--worker", kind, model, "--samples",
                                      str(args.samples)], capture_output=True, text=True, check=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                if kind not in result or measured["samples_per_s"] > result[kind]["samples_per_s"]:
                    result[kind] = measured
        rows.append(result)
        print(f"{model}: " + ", ".join(f"{k} {result[k]['samples_per_s']:,.0f}/s" for k in
                                       ("mnistlab", "conventional", "pure")), file=sys.stderr)
    from mnistlab._io import write_json, write_text
    from mnistlab.runs import machine_summary

    header = (f"Training samples/s on {machine_summary()}\n\n"
              "| model | batch | mnistlab | conventional loop | pure step | vs conventional | vs pure step "
              "| mnistlab peak memory |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = [f"| {r['model']} | {r['batch_size']} | {r['mnistlab']['samples_per_s']:,.0f} | "
             f"{r['conventional']['samples_per_s']:,.0f} | {r['pure']['samples_per_s']:,.0f} | "
             f"{r['mnistlab']['samples_per_s'] / r['conventional']['samples_per_s']:.2f}x | "
             f"{r['mnistlab']['samples_per_s'] / r['pure']['samples_per_s']:.0%} | "
             f"{r['mnistlab']['peak_mb']:.0f} MB |" for r in rows]
    table = header + "\n".join(lines) + "\n"
    print(table)
    write_text(Path(args.out) / "throughput.md", table)
    write_json(Path(args.out) / "throughput.json", rows)


if __name__ == "__main__":
    main()
