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
    assert response.status_code == 422 and "unknown file type" in response.json()["results"][1]["error"]
    assert response.json()["detail"].startswith("no file could be read: broken.png: not a readable image")
    big = ("files", ("big.npy", b"\0" * 300_000, "application/octet-stream"))
    response = client.post("/predict", files=[big])
    assert response.status_code == 413 and "exceed 200,000 bytes" in response.json()["detail"]
    answer = client.post("/predict", files=[good], params={"top_k": 0})
    assert answer.status_code == 422 and answer.json() == {
        "detail": "invalid request: query top_k: Input should be greater than or equal to 1"}
    answer = client.post("/predict")  # no files
    assert answer.status_code == 422 and "body files: Field required" in answer.json()["detail"]
    # a declared Content-Length beyond the limit is refused before the body is read
    answer = client.post("/predict", content=b"x" * 10, headers={"content-length": str(10**9),
                                                                 "content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 413 and "declares 1,000,000,000 bytes" in answer.json()["detail"]
    assert client.get("/health").json() == {"status": "ok"}  # and it keeps serving


def test_the_page_the_card_and_the_schema(client, mnist_runs):
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text and 'id="prediction"' in page.text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    card = client.get("/info").json()
    assert card["subject"] == "a digit" and card["parameters"] == 34_826 and card["dataset_name"] == "mnist"
    assert card["test_accuracy"] == pytest.approx(mnist_runs[0].metrics()["test_accuracy"])
    assert card["members"] == [{"model": "keras-cnn", "parameters": 34_826, "source": str(mnist_runs[0].path)}]
    schema = client.get("/openapi.json").json()
    ok = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["items"]["$ref"].endswith("/FileResult")
    prediction = schema["components"]["schemas"]["Prediction"]["properties"]
    assert {"class", "name", "probability", "top"} <= set(prediction)
    error = schema["paths"]["/predict"]["post"]["responses"]["413"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("/Error")


def test_explain_shows_what_the_model_saw_and_why(client, mnist_runs, mnist):
    predictor = mnistlab.load(mnist_runs[0].path)
    drawn = 255 - mnist.test_images[0]  # dark ink on white, as the page's pad sends it
    answer = client.post("/explain", files={"file": ("pad.png", _png(drawn), "image/png")}).json()
    seen, saliency = np.array(answer["image"]), np.array(answer["saliency"])
    assert seen.shape == saliency.shape == (28, 28) and seen.max() > 200 and seen[0, 0] == 0  # ink bright
    assert answer["prediction"]["name"] == "7" == str(predictor.predict(seen[None].astype(np.uint8))[0])
    assert np.abs(saliency).max() == pytest.approx(1.0) and saliency.min() >= -1
    assert abs(saliency[seen == 0]).mean() < abs(saliency[seen > 128]).mean()  # the ink matters, not the dark
    np.testing.assert_allclose(saliency, predictor.saliency(seen.astype(np.uint8)), atol=1e-4)
    bad = client.post("/explain", files={"file": ("notes.txt", b"hello")})
    assert bad.status_code == 422 and "unknown file type" in bad.json()["detail"]


def test_cors_only_when_asked(mnist_runs):
    from fastapi.testclient import TestClient

    predictor = mnistlab.load(mnist_runs[0].path)
    asked = {"Origin": "https://school.example", "Access-Control-Request-Method": "POST"}
    closed = TestClient(create_app(predictor)).options("/predict", headers=asked)
    assert "access-control-allow-origin" not in closed.headers
    opened = TestClient(create_app(predictor, cors_origins=("https://school.example",))).options("/predict",
                                                                                                 headers=asked)
    assert opened.headers["access-control-allow-origin"] == "https://school.example"


def test_a_stalled_upload_is_cut_off_while_others_are_answered(mnist_runs, mnist):
    import threading

    import httpx
    import uvicorn

    app = create_app(mnistlab.load(mnist_runs[0].path), body_timeout=1.0)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                        b"Content-Length: 5000\r\n\r\n--b\r\n")  # then nothing more
        good = httpx.post(f"http://127.0.0.1:{port}/predict", files={"files": ("d.png", _png(mnist.test_images[0]))})
        assert good.status_code == 200  # answered while the other upload hangs
        stalled.settimeout(10)
        reply = stalled.recv(4096).decode()
        assert reply.startswith("HTTP/1.1 408") and "stopped arriving for 1 s" in reply
        stalled.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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


def test_an_ensembles_card_lists_its_members(mnist_runs, tmp_path):
    from fastapi.testclient import TestClient

    from mnistlab.ensemble import create_ensemble

    ensemble = create_ensemble([r.path for r in mnist_runs], tmp_path / "both")
    card = TestClient(create_app(mnistlab.load(ensemble))).get("/info").json()
    assert card["ensemble"] and card["parameters"] == 2 * 34_826
    assert [m["source"] for m in card["members"]] == [str(r.path) for r in mnist_runs]
    assert card["test_accuracy"] is None  # not evaluated yet: the card says so rather than guess
