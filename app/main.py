"""App factory: settings -> models -> engine -> routes, with one error table."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import compat, routes
from app.engine.backend import Backend
from app.engine.engine import Engine
from app.engine.front import InferenceFront
from app.engine.queue import QueueLimits
from app.errors import (
    BadRequestError,
    ClientClosedError,
    ErrorBody,
    InvalidInputError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceError,
)
from app.memory import HeapTrimmer
from app.metrics import Metrics
from app.schemas import ClassifyRequest, InfinityClassifyRequest, PredictRequest, TokenizeRequest
from app.settings import Settings
from ltp.artifact import LTP_JSON, Artifact, ArtifactError, load_artifact, resolve_device
from ltp.runtime import tune_allocator
from ltp.text import encode

log = logging.getLogger("app")
INFERENCE_PATHS = ("/classify", "/predict")  # requests counted in ltp_requests_total
REQUEST_MODELS = (ClassifyRequest, InfinityClassifyRequest, PredictRequest, TokenizeRequest)


def load_models(settings: Settings) -> tuple[dict[str, Artifact], dict[str, tuple[str, str]]]:
    """Every LTP artifact in the models folder (or the named ones), on one device, each in
    its precision; returns the artifacts and, per model, its precision and why."""
    folder = Path(settings.models_dir)
    names = settings.models or sorted(p.name for p in folder.glob("*") if (p / LTP_JSON).is_file())
    if not names:
        raise ArtifactError(f"no LTP artifacts in {folder} (build one with `make model`)")
    if settings.default_model not in names:
        raise ArtifactError(f"default model {settings.default_model!r} is not among {names}")
    device = str(resolve_device(settings.device))
    artifacts, precisions = {}, {}
    for name in names:
        if settings.dtype != "auto":
            dtype, why = settings.dtype, "set by --dtype"
        elif device != "cpu":
            dtype, why = "fp32", f"auto on {device}: fp32"
        else:
            dtype, why = pick_precision(folder / name)
        artifacts[name] = load_artifact(folder / name, device=device, dtype=dtype)
        precisions[name] = (dtype, why)
        log.info("%s runs in %s: %s", name, dtype, why)
    return artifacts, precisions


def pick_precision(path: Path) -> tuple[str, str]:
    """The fastest precision, by a timed warm-up, among those this CPU runs natively whose
    recorded accuracy is within 0.5 pt of fp32 (``ltp.precision.choose_dtype``)."""
    from ltp.precision import choose_dtype, native_precisions, read_cpu_features, recorded_accuracy

    accuracy = recorded_accuracy(path)
    candidates = [p for p in native_precisions(read_cpu_features())
                  if p in accuracy and accuracy[p] >= accuracy.get("fp32", 1.0) - 0.005]
    timings = {}
    if len(candidates) > 1:
        for dtype in candidates:
            artifact = load_artifact(path, dtype=dtype)
            encoded = encode(artifact.tokenizer, ["warm up " * 24] * 8,
                             max_length=artifact.meta.max_length)
            backend = Backend({"m": artifact})
            backend.forward("m", encoded)
            start = time.perf_counter()
            for _ in range(3):
                backend.forward("m", encoded)
            timings[dtype] = (time.perf_counter() - start) / 3
    return choose_dtype(path, timings=timings or None)


def worker_plan(workers: int, threads: int, device: str, cores: int) -> tuple[int, int]:
    """(inference workers, torch threads each); 0 in the settings means auto.

    On the CPU, two workers of half the cores each by default: one worker's batch computes
    while the other runs its Python between operators, where a single worker of all the
    cores leaves them idle. On a GPU one worker keeps the device busy.
    """
    if workers <= 0:
        workers = 1 if device != "cpu" or cores < 2 else 2
    if threads <= 0:
        threads = max(1, cores // workers)
    return workers, threads


def warm_up(engine: Engine) -> None:
    """Real forward passes of every model before the service says ready; their timings seed
    the cost model that admission uses, so the first estimates are this machine's."""
    backend, policy = engine.backend, engine.policy
    for name, artifact in backend.artifacts.items():
        length = max(8, artifact.meta.max_length // 2)
        for count in (1, 8, 1, 8):
            texts = ["warm up " * (length // 2)] * count
            encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length)
            start = time.perf_counter()
            backend.forward(name, encoded)
            policy.costs[name].observe(sum(e.num_tokens for e in encoded),
                                       time.perf_counter() - start)


def error_response(error: ServiceError) -> Response:
    return Response(orjson.dumps(error.body()), status_code=error.status,
                    media_type="application/json", headers=error.headers)


def _handlers(app: FastAPI) -> None:
    def answer(request: Request, error: ServiceError) -> Response:
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and request.url.path in INFERENCE_PATHS:
            metrics.record_request(getattr(request.state, "model", None), error.status,
                                   error_type=error.type)
        if isinstance(error, ClientClosedError):
            log.info("client closed the connection on %s after %.0f ms; its queued work dropped",
                     request.url.path, (time.monotonic() - request.state.started) * 1e3
                     if hasattr(request.state, "started") else 0.0)
        return error_response(error)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else first.get("msg")
        return answer(request, InvalidInputError(message or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: NotFoundError, 405: MethodNotAllowedError}.get(exc.status_code)
        error = (kind or BadRequestError)(str(exc.detail), dict(exc.headers or {}))
        error.status = exc.status_code
        return answer(request, error)


class ErrorGuard:
    """The last net: an unexpected exception becomes one logged line and a 500 with the
    error body and ``Connection: close``, instead of a dropped connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s", scope.get("path"))
            if not started:
                error = ServiceError("internal error", {"Connection": "close"})
                await _send(send, error)


class Admission:
    """Refuse inference requests at once while the backlog is over the wait limit: before
    routing, body parsing or tokenising, so that a refusal costs the event loop almost
    nothing when it matters most. The handler checks again with the request's own deadline."""

    def __init__(self, app, fastapi_app: FastAPI) -> None:
        self.app, self.state = app, fastapi_app.state

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope["path"] in INFERENCE_PATHS
                and scope["method"] == "POST" and getattr(self.state, "ready", False)):
            try:
                self.state.front.engine.check_admission()
            except ServiceError as error:
                self.state.metrics.record_request(None, error.status, error_type=error.type)
                return await _send(send, error)
        return await self.app(scope, receive, send)


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not they declare a length.

    A declared length over the limit is refused before any byte is read, with
    ``Connection: close``. A chunked body is counted as it arrives; past the limit the rest
    is read and discarded (up to ``DRAIN_FACTOR`` times the limit) so the connection stays
    usable for the next request, as a lingering close would; a longer one is cut with
    ``Connection: close``.
    """

    DRAIN_FACTOR = 8

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        message = f"request body over {self.limit} bytes"
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _send(send, PayloadTooLargeError(message, {"Connection": "close"}))
        seen = 0

        async def counting_receive():
            nonlocal seen
            received = await receive()
            seen += len(received.get("body", b""))
            if seen > self.limit:
                while received.get("more_body") and seen <= self.DRAIN_FACTOR * self.limit:
                    received = await receive()
                    seen += len(received.get("body", b""))
                drained = not received.get("more_body")
                raise PayloadTooLargeError(message, {} if drained else {"Connection": "close"})
            return received

        return await self.app(scope, counting_receive, send)


async def _send(send, error: ServiceError) -> None:
    body = orjson.dumps(error.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _openapi(app: FastAPI):
    """The generated schema, plus the request bodies that routes parse themselves and the
    error body every error status refers to."""
    def schema() -> dict:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in (*REQUEST_MODELS, ErrorBody):
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = spec
        return app.openapi_schema

    return schema


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tune_allocator()
        artifacts, app.state.precisions = load_models(settings)
        device = next(iter(artifacts.values())).device.type
        workers, threads = worker_plan(settings.workers, settings.threads, device,
                                       len(os.sched_getaffinity(0)))
        torch.set_num_threads(threads)
        # the event loop waits for the GIL while a worker runs Python between operators: a
        # shorter switch interval than the default 5 ms keeps that wait short
        sys.setswitchinterval(settings.gil_switch_ms / 1e3)
        metrics = app.state.metrics
        metrics.models.update(artifacts)
        engine = Engine(Backend(artifacts), QueueLimits.from_settings(settings),
                        on_batch=metrics.record_batch, on_queue=metrics.set_queue,
                        on_drop=lambda reason, n: metrics.dropped_sequences.labels(reason).inc(n),
                        workers=workers, trimmer=HeapTrimmer(settings.trim_interval_s))
        if settings.warmup:
            warm_up(engine)
        for name, a in artifacts.items():
            metrics.model_info.labels(name, a.meta.family, str(a.device), app.state.precisions[name][0],
                                      str(name == settings.default_model).lower()).set(1)
        metrics.backlog_seconds.set_function(lambda: engine.policy.backlog_seconds(time.monotonic()))
        for name, cost in engine.policy.costs.items():
            metrics.cost_per_token_seconds.labels(name).set_function(lambda c=cost: c.per_token_s)
        engine.start()
        app.state.front = InferenceFront(engine, artifacts, settings)
        app.state.ready = True
        log.info("ready: %s on %s, %d worker(s) of %d thread(s)", sorted(artifacts), device,
                 workers, threads)
        yield
        app.state.ready = False
        await engine.stop()

    app = FastAPI(title="LTP classifier service", version="0.1.0", lifespan=lifespan,
                  description="Text classification with learned token pruning. Every error "
                  "answers `{\"error\": message, \"error_type\": type}`.")
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.ready = False
    app.include_router(routes.router)
    app.include_router(compat.router)
    _handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Admission, fastapi_app=app)
    app.add_middleware(ErrorGuard)
    app.openapi = _openapi(app)
    return app
