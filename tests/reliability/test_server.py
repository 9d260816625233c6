"""A real server under good and hostile uploads at once: every bad request gets a 4xx, the good ones keep
being answered within a second, and the server's memory comes back to where it was."""

import concurrent.futures
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from hostile import gzip_bomb, idx_header, npy_declaring, png_declaring

REQUESTS = 240  # bounded: count and time
CONCURRENT = 8
DEADLINE_SECONDS = 180
IDLE_CONNECTIONS = 32  # opened and never used, held through the whole load


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(mnist_runs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", str(mnist_runs[0].path), "--port",
                                str(port), "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert process.poll() is None
            time.sleep(0.5)
    else:
        pytest.fail("the server did not answer within 120 s")
    yield url, process.pid
    process.terminate()
    process.wait(timeout=30)


def test_bombs_and_oversized_declarations_get_4xx_while_good_requests_keep_flowing(server, digit_png):
    url, pid = server
    hostile = {
        "bomb.idx.gz": gzip_bomb(idx_header(0x08, (10, 28, 28)), 512 * 2**20),  # 0.5 MB -> 512 MB
        "honest.idx.gz": gzip_bomb(idx_header(0x08, (2**22, 28, 28)), 2**20),  # declares 3.3 GB
        "overflow-idx": idx_header(0x08, (65536,) * 4),
        "huge.npy": npy_declaring((10**6, 10**6)),
        "nan.npy": npy(np.full((3, 28, 28), np.nan, np.float32)),
        "empty.npy": npy(np.zeros((0, 28, 28), np.uint8)),
        "huge.png": png_declaring(20_000, 20_000),
        "noise.png": bytes(range(256)) * 10,
    }
    with httpx.Client(timeout=30) as client:
        def good():
            started = time.perf_counter()
            answer = client.post(f"{url}/predict", files={"files": ("digit.png", digit_png, "image/png")})
            return "good", answer.status_code, time.perf_counter() - started

        def bad(name):
            answer = client.post(f"{url}/predict", files={"files": (name, hostile[name])})
            return name, answer.status_code, None

        for _ in range(20):  # warm up: the memory a served model settles at
            assert good()[1] == 200
        before = rss_mb(pid)
        host, port = url.removeprefix("http://").split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(IDLE_CONNECTIONS)]  # clients that stall
        names = list(hostile)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            futures = [pool.submit(good) if i % 2 else pool.submit(bad, names[i // 2 % len(names)])
                       for i in range(REQUESTS)]
            results = [f.result(timeout=DEADLINE_SECONDS) for f in futures]
        assert time.monotonic() - started < DEADLINE_SECONDS
        many = client.post(f"{url}/predict", files=[("files", (f"{i}.png", digit_png)) for i in range(65)])
        assert many.status_code == 413 and "at most 64" in many.text
        time.sleep(1)
        after = rss_mb(pid)
        for connection in idle:
            connection.close()
    goods = [r for r in results if r[0] == "good"]
    bads = [r for r in results if r[0] != "good"]
    assert all(status == 200 for _, status, _ in goods)
    assert all(400 <= status < 500 for _, status, _ in bads), sorted({(n, s) for n, s, _ in bads if s >= 500})
    slowest = max(seconds for _, _, seconds in goods)
    print(f"\nserver: {len(goods)} good requests (slowest {slowest:.3f} s), {len(bads)} hostile (4xx: "
          f"{sum(400 <= s < 500 for _, s, _ in bads)}), {IDLE_CONNECTIONS} stalled connections held open, "
          f"RSS {before:.0f} MB -> {after:.0f} MB")
    assert slowest < 1.0, f"a good request took {slowest:.2f} s"
    assert after - before < 50, f"RSS {before:.0f} MB -> {after:.0f} MB"
    assert httpx.get(f"{url}/health").status_code == 200
