"""The HTTP app: a trained model (a run, an ensemble or a checkpoint) as a small JSON API.

    GET  /health    {"status": "ok"}
    GET  /info      what is served: models, classes, image shape, dataset, source
    POST /predict   a multipart upload of one or more files (field "files": pictures, .npy or IDX files);
                    query parameters top_k, tta, preprocess. One result per file, as `mnistlab predict
                    --json` prints them; a file that cannot be read gets an "error" instead of predictions,
                    and when no file could be read the answer is 422.

FastAPI documents the API at /docs. A draw-a-digit page posts its canvas as a PNG to /predict. Needs the
serve extra: pip install 'mnistlab[serve]'.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and they name types
# imported inside create_app.
import os
import threading
from pathlib import Path
from typing import Any

from mnistlab.data.inputs import InputLimits, model_input, read_input
from mnistlab.errors import MnistlabError
from mnistlab.predict import Predictor

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_FILES = 64  # files in one request
# what one uploaded file may cost: a 4 MB gzipped IDX could otherwise declare or inflate to gigabytes
SERVER_LIMITS = InputLimits(max_pixels=16_000_000, max_array_bytes=64 * 2**20, max_images=10_000)
MAX_CONNECTIONS = 256  # beyond these, new connections get 503 at once
KEEP_ALIVE_SECONDS = 5  # an idle connection is closed after this


def _fastapi():
    try:
        import fastapi
        import python_multipart  # noqa: F401  (FastAPI reads uploads with it)
    except ImportError:
        raise MnistlabError("serving needs FastAPI, uvicorn and python-multipart: pip install 'mnistlab[serve]'"
                            ) from None
    return fastapi


def describe_predictor(predictor: Predictor) -> dict[str, Any]:
    """What /info answers."""
    return {"models": [m.spec["name"] for m in predictor.models], "ensemble": predictor.is_ensemble,
            "classes": list(predictor.class_names), "image_shape": list(predictor.image_shape),
            "dataset": predictor.meta.get("dataset"), "source": str(predictor.source)}


def create_app(predictor: Predictor, max_upload_bytes: int = MAX_UPLOAD_BYTES, limits: InputLimits = SERVER_LIMITS,
               max_files: int = MAX_FILES):
    """A FastAPI app that answers with `predictor` (see the module docstring); each uploaded file is read
    within `limits`, a request holds at most `max_files` files and `max_upload_bytes` in all."""
    fastapi = _fastapi()
    from fastapi import File, HTTPException, Query, UploadFile
    from fastapi.responses import JSONResponse

    from mnistlab._version import __version__

    app = fastapi.FastAPI(title="mnistlab", version=__version__,
                          description=f"Predictions of {describe_predictor(predictor)['models']} "
                                      f"from {predictor.source}")
    model_lock = threading.Lock()  # one batch at a time: requests in parallel would only share the same cores

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        return describe_predictor(predictor)

    @app.post("/predict")
    def predict(files: list[UploadFile] = File(..., description="pictures (PNG, JPEG, BMP), .npy or IDX files"),
                top_k: int = Query(3, ge=1, description="how many of the most probable classes to list"),
                tta: bool = Query(False, description="average over 1-pixel shifts (and mirrors)"),
                preprocess: bool = Query(True, description="invert, crop, resize and centre pictures as MNIST")):
        if len(files) > max_files:
            raise HTTPException(413, f"{len(files)} files in one request; send at most {max_files}")
        uploads, total = [], 0
        for upload in files:
            data = upload.file.read(max_upload_bytes - total + 1)
            total += len(data)
            if total > max_upload_bytes:
                raise HTTPException(413, f"the files exceed {max_upload_bytes:,} bytes in all; send fewer or "
                                         f"smaller files")
            uploads.append((Path(upload.filename or "upload").name, data))
        results = []
        for name, data in uploads:
            try:
                images = model_input(*read_input(data, name, limits), name, predictor.image_shape, preprocess,
                                     limits)
                with model_lock:
                    results.append({"file": name, "predictions": predictor.describe(images, top_k, tta)})
            except MnistlabError as e:
                results.append({"file": name, "error": str(e)})
        failed = all("error" in r for r in results)
        return JSONResponse(results, status_code=422 if failed else 200)

    return app


def serve(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          max_upload_bytes: int = MAX_UPLOAD_BYTES, limits: InputLimits = SERVER_LIMITS, model: Any = None) -> None:
    """Load a run, ensemble or checkpoint (your own model with `model`, as `mnistlab.load`) and serve it
    until interrupted."""
    _fastapi()
    import uvicorn

    from mnistlab.devices import resolve_device
    from mnistlab.predict import load

    _check_port_free(host, port)
    predictor = load(path, str(resolve_device(device)), model)
    app = create_app(predictor, max_upload_bytes, limits)
    print(f"serving {predictor!r} on http://{host}:{port} (API described at /docs); Ctrl-C stops", flush=True)
    # a bounded number of connections, and idle ones closed, so slow or stalled clients cannot pile up
    uvicorn.run(app, host=host, port=port, log_level="info", limit_concurrency=MAX_CONNECTIONS,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)


def _check_port_free(host: str, port: int) -> None:
    """Fail with a clear message before loading anything (uvicorn would log an OSError and exit)."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        raise MnistlabError(f"cannot serve on {host}:{port} ({e.strerror}); choose another --port or --host"
                            ) from None
