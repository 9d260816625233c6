"""Where computation runs, and what a measurement ran on: the one home of every device rule.

`resolve_device` turns a setting ("auto", "cpu", "cuda", "cuda:N") into a `torch.device`; under a launcher
such as torchrun, which sets `LOCAL_RANK` and `WORLD_SIZE`, "auto" and "cuda" mean this process's own GPU.
`distributed_backend` is what such processes talk over. `environment`, `device_description` and
`machine_summary` describe the machine for run folders and the result tables of the benchmarks, since CPU
figures depend on the processor and the thread count. `release_free_memory` hands freed memory back to the
system between the phases of a run.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mnistlab.errors import MnistlabError


@dataclass(frozen=True)
class ProcessPlace:
    """This process's place among those a launcher started: rank 0 of 1 when run on its own."""

    rank: int = 0  # RANK: this process among all processes
    local_rank: int = 0  # LOCAL_RANK: this process among those on its machine (its GPU index)
    world_size: int = 1  # WORLD_SIZE: how many processes train together


def process_place() -> ProcessPlace:
    """Read the launcher's variables (torchrun sets RANK, LOCAL_RANK and WORLD_SIZE); absent, a world of one."""
    try:
        return ProcessPlace(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                            int(os.environ.get("WORLD_SIZE", 1)))
    except ValueError as e:
        raise MnistlabError(f"RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers ({e}); they are set by "
                            "the launcher (torchrun), not by hand") from None


def resolve_device(name: str) -> torch.device:
    """"auto" is a GPU when there is one, else the CPU; on a GPU, a process started by a launcher uses the
    GPU of its LOCAL_RANK unless the name gives an index."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MnistlabError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
        if device.index is None and process_place().world_size > 1:
            device = torch.device("cuda", process_place().local_rank)
    return device


def release_free_memory(device: torch.device) -> bool:
    """Return the C heap's free pages to the system when `device` is the CPU (glibc's malloc_trim; elsewhere
    nothing): called between the phases of a run, so that the test's and the figures' allocations do not land
    on top of the pages training freed but the allocator kept (the whole process's peak is what users see).
    Takes a few milliseconds; returns whether anything was handed back."""
    if device.type != "cpu":
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


def distributed_backend(device: torch.device) -> str:
    """The torch.distributed backend for processes training on `device`: NCCL between GPUs, gloo on CPUs."""
    return "nccl" if device.type == "cuda" else "gloo"


def thread_count() -> str:
    """How many CPU threads torch computes with, e.g. "2 threads": CPU figures depend on it."""
    n = torch.get_num_threads()
    return f"{n} thread{'s' if n > 1 else ''}"


def device_description(device: str) -> str:
    """What a measurement ran on, for a row of a result table: "cpu, 2 threads" (CPU figures depend on how
    many threads computed them) or the GPU's name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu, {thread_count()}" if device == "cpu" else device


def cpu_name() -> str:
    """The processor's model name (Linux says it in /proc/cpuinfo; `platform` often names only the
    architecture), with its family and model numbers and its bf16 units: a VM may call a Zen 3, a Zen 4 and
    a Zen 5 all "AMD EPYC", and the conv nets train 2-3x faster where the CPU has bf16 instructions."""
    try:
        return describe_cpuinfo(Path("/proc/cpuinfo").read_text())
    except (OSError, KeyError):
        return platform.processor() or platform.machine()


def describe_cpuinfo(text: str) -> str:
    """"NAME [family F model M, AVX-512 bf16]" from the first processor of /proc/cpuinfo's `text`."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if not key.strip():  # the first processor's block ends at its blank line
            break
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    bf16 = "AMX bf16" if "amx_bf16" in flags else "AVX-512 bf16" if "avx512_bf16" in flags else "no bf16"
    family = f"family {fields['cpu family']} model {fields['model']}, " if "cpu family" in fields else ""
    return f"{fields['model name']} [{family}{bf16}]"


def machine_summary(threads: bool = True) -> str:
    """One line naming what a measurement ran on, for the headers of result tables (`threads=False` where
    each row says its own)."""
    cpu = cpu_name() + (f" ({thread_count()})" if threads else "")
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}{gpu}, torch {torch.__version__}"


def environment(device: str) -> dict[str, Any]:
    """Versions, machine and code of a run, as its folder records them (`environment.json`)."""
    import numpy

    from mnistlab._version import __version__

    env = {"mnistlab": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "numpy": numpy.__version__, "platform": platform.platform(), "processor": platform.processor(),
           "cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "device": device, "world_size": process_place().world_size}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    env["git_commit"] = _git_commit()
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
