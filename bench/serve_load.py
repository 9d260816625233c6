"""Serving under load: N requests, C at a time, on loopback against a real `mnistlab serve` process.

Good requests (one 28x28-equivalent PNG of a real test digit, drawn dark on light as a page's pad sends it)
and bad ones (a broken PNG, a text file, a gzip bomb of an IDX file, a PNG declaring 400 megapixels, an .npy
declaring a terabyte) are mixed, one bad in every `--bad-every`. Prints requests/s, the latency of the good
requests (p50, p99, max), the errors (a good request not answered 200, a bad one not answered 4xx, or no
answer at all) and the server's resident memory before (after a warm-up) and after; writes
bench/results/serve_load.{json,md}. Bounded in count (`--requests`) and time (`--deadline`).

    MNISTLAB_DATA=../shared/data python bench/serve_load.py runs/mnist-fastnet-wide-1 --requests 10000 --concurrency 32

The clients (asyncio and httpx) run in `--clients` processes of their own, on the same machine as the
server: on 2 cores, they share them. One Python process is not enough to load a server at 32 requests at a
time: measured here, a single client's own event loop made the slowest 1% of answers 6x slower (p99 626 ms
against 114 ms with the same 32 connections split over 2 processes), its own latency, not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import multiprocessing
import socket
import statistics
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).parent / "results"
failures: list[str] = []  # why requests got no answer (the client's exceptions), for the report


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def digit_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(255 - image).save(buffer, format="PNG")
    return buffer.getvalue()


def bad_uploads() -> dict[str, bytes]:
    """What a hostile or careless client sends; each must get a 4xx."""
    def png_chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    huge_png = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 0, 0, 0, 0))
                + png_chunk(b"IDAT", zlib.compress(bytes(20_001))) + png_chunk(b"IEND", b""))
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {(10**6, 10**6)}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    idx_bomb = gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 100_000, 28, 28) + bytes(64 * 2**20), 9)
    return {"broken.png": b"\x89PNG\r\n\x1a\nnot really a picture", "notes.txt": b"hello",
            "bomb-idx3-ubyte.gz": idx_bomb, "huge.png": huge_png,
            "huge.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header}


def start_server(run: str, port: int, extra: list[str]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", run, "--port", str(port),
                                "--device", "cpu", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            if process.poll() is not None:
                raise SystemExit(f"the server stopped: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not answer within 120 s")


async def load(url: str, indices: range, concurrency: int, bad_every: int, good: bytes, bad: dict[str, bytes],
               deadline: float) -> list[tuple[str, int, float]]:
    """(kind, status or 0 for no answer, seconds) per request numbered in `indices`, `concurrency` in flight
    at a time."""
    names = list(bad)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in indices:
        queue.put_nowait(i)
    results: list[tuple[str, int, float]] = []
    stop = time.monotonic() + deadline
    failures.clear()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def worker():
            while not queue.empty() and time.monotonic() < stop:
                i = queue.get_nowait()
                name, body = ("digit.png", good) if bad_every <= 0 or i % bad_every else (
                    names[i // bad_every % len(names)], bad[names[i // bad_every % len(names)]])
                started = time.perf_counter()
                try:
                    answer = await client.post("/predict", files={"files": (name, body)})
                    status = answer.status_code
                except httpx.HTTPError as error:
                    status, failure = 0, f"{type(error).__name__}: {error}"[:200]
                    failures.append(failure)
                results.append(("good" if name == "digit.png" else name, status, time.perf_counter() - started))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _client(url: str, indices: range, concurrency: int, bad_every: int, good: bytes, deadline: float,
            out: multiprocessing.Queue) -> None:
    results = asyncio.run(load(url, indices, concurrency, bad_every, good, bad_uploads(), deadline))
    out.put((results, failures))


def run_clients(url: str, requests: int, concurrency: int, clients: int, bad_every: int, good: bytes,
                deadline: float) -> list[tuple[str, int, float]]:
    """`requests` spread over `clients` processes, `concurrency` in flight in all."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    shares = [range(k, requests, clients) for k in range(clients)]
    processes = [multiprocessing.Process(target=_client, args=(url, share, max(1, concurrency // clients),
                                                                bad_every, good, deadline, out))
                 for share in shares]
    for process in processes:
        process.start()
    results: list[tuple[str, int, float]] = []
    for _ in processes:
        got, why = out.get(timeout=deadline + 120)
        results += got
        failures.extend(why)
    for process in processes:
        process.join()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run, ensemble or checkpoint to serve")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight at a time, in all")
    parser.add_argument("--clients", type=int, default=2, help="client processes sharing the concurrency")
    parser.add_argument("--bad-every", type=int, default=10, help="one bad upload in every N requests (0: none)")
    parser.add_argument("--deadline", type=float, default=600, help="stop sending after this many seconds")
    parser.add_argument("--warmup", type=int, default=200, help="good requests before memory is first measured")
    parser.add_argument("--server-args", default="", help="more `mnistlab serve` flags, e.g. '--model mynet.py:build'")
    parser.add_argument("--name", default="serve_load", help="results file name (bench/results/NAME.{json,md})")
    args = parser.parse_args()

    from mnistlab.data import load_dataset
    from mnistlab.devices import machine_summary

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    good = digit_png(load_dataset("mnist").test_images[0])
    server = start_server(args.run, port, args.server_args.split())
    try:
        asyncio.run(load(url, range(args.warmup), min(args.concurrency, 8), 0, good, {}, args.deadline))
        before = rss_mb(server.pid)
        started = time.perf_counter()
        results = run_clients(url, args.requests, args.concurrency, args.clients, args.bad_every, good,
                              args.deadline)
        seconds = time.perf_counter() - started
        time.sleep(1)
        after = rss_mb(server.pid)
        alive = httpx.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    goods = [r for r in results if r[0] == "good"]
    latencies = [r[2] for r in goods if r[1] == 200]
    wrong = [(kind, status) for kind, status, _ in results
             if (kind == "good" and status != 200) or (kind != "good" and not 400 <= status < 500)]
    errors = len(wrong)
    figures = {
        "run": args.run, "requests": len(results), "sent_of": args.requests, "concurrency": args.concurrency,
        "client_processes": args.clients,
        "bad": len(results) - len(goods), "seconds": round(seconds, 2),
        "requests_per_s": round(len(results) / seconds, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "errors": errors, "error_kinds": sorted({f"{k}: {s or 'no answer'}" for k, s in wrong}),
        "no_answer_because": sorted(set(failures))[:5], "rss_before_mb": round(before), "rss_after_mb": round(after),
        "rss_growth_mb": round(after - before, 1), "still_serving": alive,
        "machine": machine_summary(), "date": time.strftime("%Y-%m-%d"),
    }
    rows = [f"| {k} | {v} |" for k, v in figures.items()]
    table = "\n".join(["| measure | value |", "|---|---|", *rows])
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(f"# Serving under load\n\n{table}\n")
    if errors or not alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
