"""Training in several processes (DistributedDataParallel), started by torchrun or by `train --nproc N`.

Each process holds the whole dataset on its own device and takes its share of every global batch, drawn
from the same seeded permutation as one process would draw (see `DeviceBatches`); DDP averages the gradients,
and the epoch's metrics are summed over the processes. Only rank 0 writes the run folder. Processes find
their place in the variables torchrun sets (`devices.process_place`); alone, every function here is a no-op.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Sequence

import torch
import torch.distributed as dist

from mnistlab._io import write_json
from mnistlab.devices import ProcessPlace, distributed_backend, process_place, resolve_device
from mnistlab.errors import ConfigError, MnistlabError

if TYPE_CHECKING:
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from mnistlab.settings import TrainConfig


def join(device: torch.device) -> ProcessPlace:
    """Join the other processes of a torchrun launch (once per process); returns this process's place."""
    place = process_place()
    if place.world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(distributed_backend(device), timeout=timedelta(minutes=10))
        except ValueError as e:  # MASTER_ADDR and friends missing: started by hand, not by a launcher
            raise MnistlabError(f"WORLD_SIZE is {place.world_size} but this process was not started by torchrun "
                                f"({e}); use mnistlab train --nproc N, or torchrun --nproc-per-node N -m mnistlab "
                                "train") from None
    return place


def leave() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def is_writer() -> bool:
    """Whether this process writes the run folder: rank 0, or a process on its own."""
    return process_place().rank == 0


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over every process (in place); unchanged when training alone."""
    if dist.is_initialized():
        dist.all_reduce(values)
    return values


def mean_loss_and_accuracy(loss_sum: torch.Tensor, hits: torch.Tensor, count: int) -> tuple[float, float, int]:
    """(loss_sum / n, hits / n, n) from device sums over `count` images, the sums over every process: the
    one host sync of an epoch's metrics or an evaluation."""
    totals = torch.stack([loss_sum.float(), hits.float(), torch.tensor(float(count), device=loss_sum.device)])
    loss_sum, hits, n = all_reduce_sum(totals).tolist()
    return loss_sum / n, hits / n, int(n)


def share_of(rows: torch.Tensor) -> torch.Tensor:
    """This process's share of `rows` (sizes differ by at most one): all of it when training alone."""
    place = process_place()
    return rows.tensor_split(place.world_size)[place.rank] if place.world_size > 1 else rows


def broadcast_from_writer(value: Any) -> Any:
    """Rank 0's `value` in every process (a run folder's path, say)."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_settings(batch_size: int, cuda_graph: bool, sync_bn: bool, device: torch.device,
                   world: int | None = None) -> None:
    """What `world` processes (by default this one's, under a launcher) cannot do, said before anything
    starts."""
    world = process_place().world_size if world is None else world
    if sync_bn and device.type != "cuda":
        raise ConfigError("sync_bn needs GPUs: torch's SyncBatchNorm runs only on CUDA devices; on CPUs each "
                          "process normalizes its share of the batch (leave sync_bn off)")
    if world == 1:
        return
    if batch_size % world:
        raise ConfigError(f"batch_size {batch_size} does not split evenly over {world} processes: the global batch "
                          f"is shared out, so choose a multiple of {world}")
    if cuda_graph:
        raise ConfigError("cuda_graph trains in one process; leave it off (--no-cuda-graph) with several processes")


def record_error(message: str) -> None:
    """Leave this process's error message where its launcher reads it: the file torchrun names in
    TORCHELASTIC_ERROR_FILE, in the plain-message form its `ProcessFailure` reads (torchrun's summary of a
    failed launch shows it, and `launch` says it when rank 0 could not). A no-op outside a launcher."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        write_json(path, {"message": message, "timestamp": int(time.time())})


def unsaid_error(failures: dict[int, ProcessFailure]) -> str | None:
    """The error message `launch` should say for failed processes (by global rank), or None: rank 0 says its
    own before it records it (`record_error`), so a recorded rank-0 message was said. When every process fails
    alike, torchrun stops the others as soon as the first exits, which may be before rank 0 has said why;
    then the earliest recorded message of another process is the one."""
    recorded = {rank: f for rank, f in failures.items()  # in record_error's form, not torch's placeholder
                if isinstance(f.error_file_data.get("message"), str) and "timestamp" in f.error_file_data}
    if not recorded or 0 in recorded:
        return None
    return min(recorded.values(), key=lambda f: f.timestamp).message


def launch(nproc: int, argv: Sequence[str], config: TrainConfig | None = None) -> int:
    """Run `mnistlab ARGV` in `nproc` processes on this machine through torchrun (`train --nproc N`); returns the
    exit status (0, or a failed process's own, before a stopped one's). On CPUs each process computes with its
    share of the cores. What `nproc` processes cannot do with `config` (the settings they will train with) is
    said here, once, before any starts: when every process fails alike, torchrun stops the others as soon as the
    first exits, which may be before rank 0 has said why. Other errors are the processes' own: rank 0 says them,
    or this launcher does when rank 0 was stopped first (`unsaid_error`); without the launcher's traceback."""
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if process_place().world_size > 1:
        raise ConfigError("--nproc starts processes, and this one was itself started by a launcher; leave it out")
    if config is not None:
        check_settings(config.batch_size, config.cuda_graph, config.sync_bn, resolve_device(config.device), nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or nproc) // nproc)))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # its notes on a failed child
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "mnistlab", *argv]))
    except ChildFailedError as e:
        message = unsaid_error(e.failures)
        if message:
            print(f"mnistlab: error: {message}", file=sys.stderr)
        codes = [f.exitcode for f in e.failures.values() if f.exitcode]  # torchrun's are -N for signal N
        own = [code for code in codes if code > 0]  # a process's own status before that of one stopped
        return own[0] if own else 128 - codes[0] if codes else 1  # 128 + N, as a shell reports a signal
    except KeyboardInterrupt:  # torchrun passes the interrupt on to the processes, which record it
        return 130
    return 0
