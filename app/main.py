"""App factory: settings -> models -> engine -> routes, with one error table."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.engine.backend import Backend
from app.engine.engine import Engine
from app.engine.front import InferenceFront
from app.engine.queue import QueueLimits
from app.errors import PayloadTooLargeError, ServiceError, error_body
from app.metrics import Metrics
from app.routes import router
from app.settings import Settings
from ltp.artifact import LTP_JSON, Artifact, ArtifactError, load_artifact, resolve_device
from ltp.runtime import tune_allocator
from ltp.text import encode

log = logging.getLogger("app")


def load_models(settings: Settings) -> dict[str, Artifact]:
    """Every LTP artifact in the models folder (or the named ones), on one device."""
    folder = Path(settings.models_dir)
    names = settings.models or sorted(p.name for p in folder.glob("*") if (p / LTP_JSON).is_file())
    if not names:
        raise ArtifactError(f"no LTP artifacts in {folder} (build one with `make model`)")
    if settings.default_model not in names:
        raise ArtifactError(f"default model {settings.default_model!r} is not among {names}")
    device = str(resolve_device(settings.device))
    return {name: load_artifact(folder / name, device=device, dtype=settings.dtype)
            for name in names}


def worker_plan(workers: int, threads: int, device: str, cores: int) -> tuple[int, int]:
    """(inference workers, torch threads each); 0 in the settings means auto.

    On the CPU, two workers of half the cores each by default: one worker's batch computes
    while the other runs its Python between operators, where a single worker of all the
    cores leaves them idle (on 2 cores under load: 1.3x the requests/s of one worker of two
    threads). On a GPU one worker keeps the device busy.
    """
    if workers <= 0:
        workers = 1 if device != "cpu" or cores < 2 else 2
    if threads <= 0:
        threads = max(1, cores // workers)
    return workers, threads


def warm_up(backend: Backend) -> None:
    """A real forward pass per model, at a few lengths, before the service says ready."""
    for name, artifact in backend.artifacts.items():
        texts = ["warm up " * n for n in (1, 8, 32)]
        for enc in encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length):
            backend.forward(name, [enc])


def _handlers(app: FastAPI) -> None:
    def record(request: Request, status: int, kind: str) -> None:
        model = getattr(request.state, "model", None) or "-"
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and request.url.path == "/classify":
            metrics.record_request(model, status)
            metrics.record_rejection(kind)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        record(request, exc.status, exc.type)
        return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        record(request, 422, "invalid_input")
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg")
        return JSONResponse({"error": message or "invalid request", "type": "invalid_input"}, 422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        record(request, 500, "internal_error")
        return JSONResponse({"error": "internal error", "type": "internal_error"}, 500)


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not they declare a length."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = PayloadTooLargeError(f"request body over {self.limit} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send_error(send, too_large)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise too_large
            return message

        return await self.app(scope, counting_receive, send)


async def _send_error(send, error: ServiceError) -> None:
    import json

    body = json.dumps(error_body(error)).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tune_allocator()
        artifacts = load_models(settings)
        device = next(iter(artifacts.values())).device.type
        workers, threads = worker_plan(settings.workers, settings.threads, device,
                                       len(os.sched_getaffinity(0)))
        torch.set_num_threads(threads)
        backend = Backend(artifacts)
        if settings.warmup:
            warm_up(backend)
        metrics = app.state.metrics
        for name, a in artifacts.items():
            metrics.model_info.labels(name, a.meta.family, str(a.device), settings.dtype,
                                      str(name == settings.default_model).lower()).set(1)
        limits = QueueLimits(max_batch_size=settings.max_batch_size,
                             max_batch_tokens=settings.max_batch_tokens,
                             max_sequences=settings.max_queue_sequences,
                             max_padding_ratio=settings.max_padding_ratio)
        engine = Engine(backend, limits, settings.max_wait_ms / 1e3, on_batch=metrics.record_batch,
                        on_queue=metrics.set_queue,
                        on_drop=lambda reason, n: metrics.rejections.labels(reason).inc(n),
                        workers=workers)
        engine.start()
        app.state.front = InferenceFront(engine, artifacts, settings)
        app.state.ready = True
        log.info("ready: %s on %s, %d worker(s) of %d thread(s)", sorted(artifacts), device,
                 workers, threads)
        yield
        app.state.ready = False
        await engine.stop()

    app = FastAPI(title="LTP classifier service", version="0.1.0", lifespan=lifespan,
                  description="Text classification with learned token pruning.")
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.ready = False
    app.include_router(router)
    _handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
