"""The HTTP API: the answers `mnistlab predict --json` gives, over uploads; clear errors; a real server."""

import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import mnistlab
from mnistlab.serve import create_app

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def client(mnist_runs):
    from fastapi.testclient import TestClient

    return TestClient(create_app(mnistlab.load(mnist_runs[0].path), max_upload_bytes=200_000))


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _flat(predictions: list[dict]) -> list[tuple]:
    return [(t["class"], t["name"], t["probability"]) for p in predictions for t in [p, *p["top"]]]


def test_health_and_info(client, mnist_runs):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["models"] == ["keras-cnn"] and info["classes"] == [str(i) for i in range(10)]
    assert info["image_shape"] == [28, 28] and info["dataset"] == "mnist"


def test_predict_answers_as_the_predictor_does(client, mnist_runs, mnist):
    predictor = mnistlab.load(mnist_runs[0].path)
    batch = io.BytesIO()
    np.save(batch, mnist.test_images[:20])
    files = [("files", ("digit.png", _png(mnist.test_images[20]), "image/png")),
             ("files", ("batch.npy", batch.getvalue(), "application/octet-stream"))]
    response = client.post("/predict", files=files, params={"top_k": 2, "preprocess": "false"})
    assert response.status_code == 200
    picture, array = response.json()
    assert picture["file"] == "digit.png" and array["file"] == "batch.npy"
    expected = _flat(predictor.describe(mnist.test_images[:20], top_k=2)) + _flat(
        predictor.describe(mnist.test_images[20:21], top_k=2))
    got = _flat(array["predictions"]) + _flat(picture["predictions"])
    assert [g[:2] for g in got] == [e[:2] for e in expected]  # the same classes and names, in the same order
    assert [g[2] for g in got] == pytest.approx([e[2] for e in expected], abs=1e-6)
    tta = client.post("/predict", files=files[1:], params={"tta": "true"}).json()[0]["predictions"]
    assert [p["class"] for p in tta] == predictor.predict(mnist.test_images[:20], tta=True).tolist()


def test_bad_uploads_get_clear_answers(client, mnist):
    broken = ("files", ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"))
    good = ("files", ("good.png", _png(mnist.test_images[0]), "image/png"))
    response = client.post("/predict", files=[broken, good])
    assert response.status_code == 200  # one file read: its answer, and the other's error
    assert "broken.png: not a readable image" in response.json()[0]["error"]
    assert "predictions" in response.json()[1]
    response = client.post("/predict", files=[broken, ("files", ("notes.txt", b"hello", "text/plain"))])
    assert response.status_code == 422 and "unknown file type" in response.json()[1]["error"]
    big = ("files", ("big.npy", b"\0" * 300_000, "application/octet-stream"))
    response = client.post("/predict", files=[big])
    assert response.status_code == 413 and "exceed 200,000 bytes" in response.json()["detail"]
    assert client.post("/predict", files=[good], params={"top_k": 0}).status_code == 422
    assert client.post("/predict").status_code == 422  # no files


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mnistlab_serve_runs_a_real_server(mnist_runs, mnist, tmp_path):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mnistlab", "serve", str(mnist_runs[0].path), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(120):  # importing torch and loading the model takes a few seconds
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                    assert json.load(answer) == {"status": "ok"}
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        else:
            pytest.fail("the server did not answer within 60 s")
        # the port is taken now: a second server says so in one line
        second = subprocess.run([sys.executable, "-m", "mnistlab", "serve", str(mnist_runs[0].path), "--port",
                                 str(port)], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"cannot serve on 127.0.0.1:{port}" in second.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
