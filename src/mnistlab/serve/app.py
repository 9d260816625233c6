"""The HTTP app: a trained model (a run, an ensemble or a checkpoint) as a JSON API and a draw-a-digit page.

    GET  /          the page (`static/`): draw or upload, see the answer, what the model saw and why
    GET  /health    {"status": "ok"}
    GET  /info      the model card: models and their parameters, classes, what an image shows, dataset,
                    test accuracy, where it came from (an ensemble's members too)
    POST /predict   a multipart upload of one or more files (field "files": pictures, .npy or IDX files);
                    query parameters top_k, tta, preprocess. One result per file, as `mnistlab predict
                    --json` prints them; a file that cannot be read gets an "error" instead of predictions,
                    and when no file could be read the answer is 422.
    POST /explain   one file (field "file"): its first image as the model saw it (after preprocessing) and
                    an occlusion map of which pixels drove the answer

Every error is `{"detail": "..."}` with a 4xx status (a 422 for unreadable files adds "results"). A request
may hold `max_files` files and `max_upload_bytes` in all (refused from its Content-Length before it is read),
each file is read within `limits`, and a client that stops sending its body is cut off after
`BODY_TIMEOUT_SECONDS`. FastAPI documents the API at /docs. Needs the serve extra: pip install 'mnistlab[serve]'.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and they name types
# imported inside create_app.
import asyncio
import gc
import os
from pathlib import Path
from typing import Any, Optional

from mnistlab.data.inputs import InputLimits, is_small_picture, model_input, read_input
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.predict import Predictor

MAX_UPLOAD_BYTES = 10 * 2**20
MAX_FILES = 64  # files in one request
# what one uploaded file may cost: a 4 MB gzipped IDX could otherwise declare or inflate to gigabytes
SERVER_LIMITS = InputLimits(max_pixels=16_000_000, max_array_bytes=64 * 2**20, max_images=10_000)
MAX_CONNECTIONS = 256  # beyond these, new connections get 503 at once
KEEP_ALIVE_SECONDS = 5  # an idle connection is closed after this
BODY_TIMEOUT_SECONDS = 30  # a request body must keep arriving: a stalled upload is answered 408 after this
STATIC = Path(__file__).parent / "static"


def _fastapi():
    try:
        import fastapi
        import python_multipart  # noqa: F401  (FastAPI reads uploads with it)
    except ImportError:
        raise MnistlabError("serving needs FastAPI, uvicorn and python-multipart: pip install 'mnistlab[serve]'"
                            ) from None
    return fastapi


def describe_predictor(predictor: Predictor) -> dict[str, Any]:
    """What /info answers: the model card."""
    from mnistlab.data.registry import DATASETS
    from mnistlab.models.registry import count_parameters
    from mnistlab.runs import EnsembleFolder, RunFolder, run_folder_of

    dataset = predictor.meta.get("dataset")
    spec = DATASETS.get(str(dataset))
    classes = list(predictor.class_names)
    ensemble = EnsembleFolder(predictor.source) if predictor.source else None
    if ensemble is not None and ensemble.exists():
        metrics, sources = ensemble.metrics(), ensemble.spec().get("sources", [])
    else:
        run = RunFolder(run_folder_of(predictor.source)) if predictor.source else None
        metrics = run.metrics() if run is not None and run.exists() else {}
        sources = [str(run.path) if run is not None and run.exists() else str(predictor.source)]
    members = [{"model": m.spec["name"], "parameters": count_parameters(m), "source": source}
               for m, source in zip(predictor.models, sources + [None] * len(predictor.models))]
    return {"models": [m.spec["name"] for m in predictor.models], "ensemble": predictor.is_ensemble,
            "members": members, "parameters": sum(m["parameters"] for m in members), "classes": classes,
            "image_shape": list(predictor.image_shape), "dataset": dataset,
            "dataset_name": spec.name if spec else (Path(str(dataset)).stem if dataset else None),
            "subject": spec.subject if spec else f"one of: {', '.join(classes)}",
            "test_accuracy": metrics.get("test_accuracy"), "source": str(predictor.source)}


def _schemas():
    """The answers' shapes, for the OpenAPI schema (/docs) and for checking what is sent."""
    from pydantic import BaseModel, ConfigDict, Field

    class ClassScore(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        class_: int = Field(alias="class", description="class index")
        name: str = Field(description="class name")
        probability: float

    class Prediction(ClassScore):
        top: list[ClassScore] = Field(description="the top_k most probable classes, most probable first")

    class FileResult(BaseModel):
        file: str
        predictions: Optional[list[Prediction]] = Field(None, description="one per image in the file")
        error: Optional[str] = Field(None, description="why the file could not be read (then no predictions)")

    class Error(BaseModel):
        detail: str = Field(description="what is wrong and what to do")
        results: Optional[list[FileResult]] = Field(None, description="with 422: each file's error")

    class Explanation(BaseModel):
        file: str
        prediction: Prediction
        image: list[list[int]] = Field(description="the image as the model saw it (H x W, 0-255, ink bright)")
        saliency: list[list[float]] = Field(description="H x W in [-1, 1]: positive where the ink supports "
                                                        "the answer, negative where it argues against")
        method: str

    class ModelCard(BaseModel):
        models: list[str]
        ensemble: bool
        members: list[dict[str, Any]]
        parameters: int
        classes: list[str]
        image_shape: list[int]
        dataset: Optional[str]
        dataset_name: Optional[str]
        subject: str = Field(description="what an image shows, e.g. 'a digit'")
        test_accuracy: Optional[float]
        source: str

    return ClassScore, Prediction, FileResult, Error, Explanation, ModelCard


def create_app(predictor: Predictor, max_upload_bytes: int = MAX_UPLOAD_BYTES, limits: InputLimits = SERVER_LIMITS,
               max_files: int = MAX_FILES, cors_origins: tuple[str, ...] = (),
               body_timeout: float = BODY_TIMEOUT_SECONDS, workers: int | None = None):
    """A FastAPI app that answers with `predictor` (see the module docstring); each uploaded file is read
    within `limits`, a request holds at most `max_files` files and `max_upload_bytes` in all, and its body
    may pause for at most `body_timeout` seconds; `cors_origins` may call it from pages served elsewhere.
    `workers` requests are worked on at once (default: one per core)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    fastapi = _fastapi()
    import anyio
    import anyio.to_thread
    from fastapi import File, HTTPException, Query, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    from mnistlab._version import __version__

    _, _, FileResult, Error, Explanation, ModelCard = _schemas()
    card = describe_predictor(predictor)
    errors = {code: {"model": Error} for code in (408, 413, 422)}
    app = fastapi.FastAPI(title="mnistlab", version=__version__,
                          description=f"Predictions of {card['models']} from {predictor.source}")
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"])
    # the form's own bytes (boundaries, headers) on top of the files'
    app.add_middleware(UploadGuard, max_bytes=max_upload_bytes + 64 * 1024 + 1024 * max_files, timeout=body_timeout)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return JSONResponse({"detail": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        problems = "; ".join(f"{' '.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info", response_model=ModelCard)
    def info():
        return card

    async def read_uploads(files: list) -> list[tuple[str, bytes]]:
        if len(files) > max_files:
            raise HTTPException(413, f"{len(files)} files in one request; send at most {max_files}")
        uploads, total = [], 0
        for upload in files:
            data = await upload.read(max_upload_bytes - total + 1)
            total += len(data)
            if total > max_upload_bytes:
                raise HTTPException(413, f"the files exceed {max_upload_bytes:,} bytes in all; send fewer or "
                                         f"smaller files")
            uploads.append((Path(upload.filename or "upload").name, data))
        return uploads

    def images_of(name: str, data: bytes, preprocess: bool):
        return model_input(*read_input(data, name, limits), name, predictor.image_shape, preprocess, limits)

    # A request of small pictures (a drawing pad's, a digit's photo: under 1 megapixel) is answered on the
    # event loop at once: reading, preprocessing and the model take about 0.5 ms, less than handing it to a
    # thread costs (bench/serve_load.py: 435 -> 720 requests/s). Any other request (large pictures, arrays,
    # IDX files, which may take long to read and to refuse) runs in a pool of `workers` threads, the requests
    # beyond them waiting their turn in order, so that it holds up neither the small ones nor the loop.
    pool = anyio.CapacityLimiter(workers or os.cpu_count() or 1)

    async def work(function, uploads: list[tuple[str, bytes]], *args):
        if all(is_small_picture(data, name) for name, data in uploads) and len(uploads) <= 4:
            return function(uploads, *args)
        return await anyio.to_thread.run_sync(function, uploads, *args, limiter=pool)

    def answer_files(uploads: list[tuple[str, bytes]], top_k: int, tta: bool, preprocess: bool) -> list[dict]:
        results = []
        for name, data in uploads:
            try:
                results.append({"file": name, "predictions": predictor.describe(images_of(name, data, preprocess),
                                                                                top_k, tta)})
            except MnistlabError as e:
                results.append({"file": name, "error": str(e)})
        return results

    @app.post("/predict", response_model=list[FileResult], response_model_exclude_none=True, responses=errors)
    async def predict(files: list[UploadFile] = File(..., description="pictures (PNG, JPEG, BMP), .npy or IDX "
                                                                      "files"),
                      top_k: int = Query(3, ge=1, description="how many of the most probable classes to list"),
                      tta: bool = Query(False, description="average over 1-pixel shifts (and mirrors)"),
                      preprocess: bool = Query(True, description="invert, crop, resize and centre pictures as "
                                                                 "MNIST")):
        uploads = await read_uploads(files)
        results = await work(answer_files, uploads, top_k, tta, preprocess)
        if all("error" in r for r in results):
            return JSONResponse({"detail": "no file could be read: " + "; ".join(r["error"] for r in results),
                                 "results": results}, status_code=422)
        return JSONResponse(results)  # as documented, without validating what describe() made once more

    def explain_image(uploads: list[tuple[str, bytes]], tta: bool, preprocess: bool) -> dict:
        ((name, data),) = uploads
        try:
            image = images_of(name, data, preprocess)[0]
        except MnistlabError as e:
            raise HTTPException(422, str(e)) from None
        answer = predictor.describe(image[None], top_k=min(5, len(predictor.class_names)), tta=tta)[0]
        saliency = predictor.saliency(image, answer["class"], tta)
        return {"file": name, "prediction": answer, "image": image.astype(int).tolist(),
                "saliency": saliency.round(4).tolist(), "method": "occlusion (6x6 squares, stride 2)"}

    @app.post("/explain", response_model=Explanation, responses=errors)
    async def explain(file: UploadFile = File(..., description="a picture, .npy or IDX file: its first image"),
                      tta: bool = Query(False, description="average over 1-pixel shifts (and mirrors)"),
                      preprocess: bool = Query(True, description="invert, crop, resize and centre pictures as "
                                                                 "MNIST")):
        # an explanation runs the model on ~150 occluded copies: always in the pool
        uploads = await read_uploads([file])
        return JSONResponse(await anyio.to_thread.run_sync(explain_image, uploads, tta, preprocess, limiter=pool))

    return app


class UploadGuard:
    """ASGI middleware for the limits a request meets before any endpoint reads it: a declared
    Content-Length above `max_bytes` is answered 413 at once, and a body that stops arriving for `timeout`
    seconds is answered 408, so that a slow client holds only its own connection."""

    def __init__(self, app, max_bytes: int, timeout: float = BODY_TIMEOUT_SECONDS):
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            return await _answer(send, 413, f"the request declares {int(length):,} bytes; send at most "
                                            f"{self.max_bytes:,}")
        timed_out = replaced = False

        async def timed_receive():
            nonlocal timed_out
            try:
                return await asyncio.wait_for(receive(), self.timeout)
            except asyncio.TimeoutError:
                timed_out = True
                raise _BodyTimeout() from None

        async def answering_send(message):
            # FastAPI answers a body that fails to arrive with a generic 400: say what happened instead
            nonlocal replaced
            if replaced:
                return
            if timed_out and message["type"] == "http.response.start":
                replaced = True
                return await _answer(send, 408, f"the request body stopped arriving for {self.timeout:g} s; send "
                                                "it without pauses")
            await send(message)

        try:
            await self.app(scope, timed_receive, answering_send)
        except _BodyTimeout:
            if not replaced:
                await _answer(send, 408, f"the request body stopped arriving for {self.timeout:g} s; send it "
                                         "without pauses")


class _BodyTimeout(Exception):
    pass


async def _answer(send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def serve(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, device: str = "auto",
          max_upload_bytes: int = MAX_UPLOAD_BYTES, limits: InputLimits = SERVER_LIMITS, model: Any = None,
          cors_origins: tuple[str, ...] = (), workers: int | None = None) -> None:
    """Load a run, ensemble or checkpoint (your own model with `model`, as `mnistlab.load`) and serve it
    until interrupted, working on `workers` requests at once (default: one per core)."""
    _fastapi()
    import uvicorn

    from mnistlab.devices import resolve_device
    from mnistlab.predict import load

    _check_port_free(host, port)
    device = resolve_device(device)
    if device.type == "cpu":  # one core per worker: requests side by side, not threads fighting over cores
        import torch

        torch.set_num_threads(1)
    predictor = load(path, str(device), model)
    app = create_app(predictor, max_upload_bytes, limits, cors_origins=tuple(cors_origins), workers=workers)
    # what is loaded now (torch, the model, the app) lives as long as the server: out of the garbage
    # collector's sight, a full collection no longer walks it (bench/serve_load.py: p99 226 -> 77 ms)
    gc.freeze()
    print(f"serving {predictor!r} on http://{host}:{port} (the page: http://{host}:{port}/, the API described "
          f"at /docs); Ctrl-C stops", flush=True)
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
