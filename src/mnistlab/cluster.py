"""Ray, for work spread beyond one process (`sweep`, `reproduce --ray`): joining a cluster, or starting a
local instance for the length of the work and stopping it after.

Ray is an optional extra (`pip install 'mnistlab[ray]'`). On a cluster, every node needs mnistlab and its
data, and the output folder must be on storage that every node sees (as Ray Tune's own storage does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any, Iterator
from urllib.parse import urlsplit

from mnistlab.errors import ConfigError, MnistlabError

INSTALL = "pip install 'mnistlab[ray]'"


def import_ray() -> Any:
    """The `ray` module, or an error that says how to install it."""
    try:
        import ray
        from ray import tune  # noqa: F401  (the extra installs ray[tune])
    except ImportError:
        raise MnistlabError(f"this needs Ray (Ray Tune), which is not installed here: {INSTALL}") from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """Fail at once, with what to do, if nothing answers at a cluster address (`auto` is left to Ray):
    `ray://HOST:PORT` (Ray Client, port 10001 by default) or `HOST:PORT` (the head node's GCS, 6379)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    default_port = 10001 if parts.scheme == "ray" else 6379
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:
        host = None
    if not host:
        raise ConfigError(f"--address {address!r} is not a cluster address; give ray://HOST:PORT, HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        raise MnistlabError(f"no Ray cluster answers at {address} ({host}:{port}: {e.strerror or e}); start one "
                            "there (ray start --head), check the address, or leave --address out to run on this "
                            "machine") from None


@contextlib.contextmanager
def connect(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for the length of the block: joined at `address`, or (None) a local instance started now with
    `num_cpus` (default: every core) and stopped at the end. Yields the `ray` module."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's console tables: mnistlab prints its own lines
    ray = import_ray()
    if address:
        check_address(address)
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        else:  # a private instance: its notes on clusters and security are not for this use
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except ConnectionError as e:
        raise MnistlabError(f"could not join the Ray cluster at {address}: {str(e).splitlines()[0]}; start one "
                            "(ray start --head) or leave --address out to run on this machine") from None
    try:
        yield ray
    finally:
        ray.shutdown()
