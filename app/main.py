"""App factory: settings -> models -> engine -> routes, with one error table."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
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
    ServiceError,
    error_response,
)
from app.loading import batch_size, load_models, warm_up, worker_plan
from app.memory import HeapTrimmer
from app.metrics import Metrics
from app.middleware import INFERENCE_PATHS, Admission, BodyLimit, ErrorGuard, Turns
from app.schemas import ClassifyRequest, InfinityClassifyRequest, PredictRequest, TokenizeRequest
from app.settings import Settings
from ltp.core.artifact import resolve_device
from ltp.core.machine import tune_allocator

log = logging.getLogger("app")
REQUEST_MODELS = (ClassifyRequest, InfinityClassifyRequest, PredictRequest, TokenizeRequest)


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
        device = resolve_device(settings.device).type
        workers, threads = worker_plan(settings.workers, settings.threads, device,
                                       len(os.sched_getaffinity(0)))
        torch.set_num_threads(threads)  # before loading: engines size their thread pools by it
        # each worker tokenises its own batch in its thread: no tokenizer thread pool beside
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        artifacts, app.state.precisions = load_models(settings, threads)
        # the event loop waits for the GIL while a worker runs Python between operators: a
        # shorter switch interval than the default 5 ms keeps that wait short
        sys.setswitchinterval(settings.gil_switch_ms / 1e3)
        metrics = app.state.metrics
        metrics.models.update(artifacts)
        engine = Engine(Backend(artifacts), QueueLimits.from_settings(settings, batch_size(artifacts)),
                        on_batch=metrics.record_batch, on_queue=metrics.set_queue,
                        on_drop=lambda reason, n: metrics.dropped_sequences.labels(reason).inc(n),
                        workers=workers, trimmer=HeapTrimmer(settings.trim_interval_s),
                        idle_workers=settings.worker_scheduling == "idle")
        if settings.warmup:
            warm_up(engine)
        for name, a in artifacts.items():
            runtime = app.state.precisions[name]
            metrics.model_info.labels(name, a.meta.family, str(a.device), runtime.dtype,
                                      runtime.engine, str(name == settings.default_model).lower()).set(1)
        metrics.backlog_seconds.set_function(lambda: engine.policy.backlog_seconds(time.monotonic()))
        for name, cost in engine.policy.costs.items():
            metrics.cost_per_token_seconds.labels(name).set_function(lambda c=cost: c.per_token_s)
        # everything loaded so far (models, tokenizers, engines: millions of objects) lives as
        # long as the service: out of the collector's sight, a full collection no longer walks
        # it, which stalled the event loop for a request's worth of milliseconds under load
        gc.collect()
        gc.freeze()
        engine.start()
        app.state.front = InferenceFront(engine, artifacts, settings)
        app.state.ready = True
        log.info("ready: %s on %s, %d worker(s) of %d thread(s) (%s scheduling), batches of up "
                 "to %d", sorted(artifacts), device, workers, threads, settings.worker_scheduling,
                 engine.policy.limits.max_batch_size)
        yield
        app.state.ready = False
        await engine.stop()

    # /docs and /redoc load Swagger UI's and ReDoc's scripts from this server (the
    # fastapi-offline package ships them), not from a CDN: the docs work offline
    app = FastAPIOffline(title="LTP classifier service", version="0.1.0", lifespan=lifespan,
                         description="Text classification with learned token pruning. Every "
                         "error answers `{\"error\": message, \"error_type\": type}`.",
                         swagger_ui_parameters={"validatorUrl": None})  # no badge from outside
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.ready = False
    app.state.turns = Turns(settings.admitted_per_turn)
    app.include_router(routes.router)
    app.include_router(compat.router)
    _handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(Admission, fastapi_app=app)
    app.add_middleware(ErrorGuard)
    app.openapi = _openapi(app)
    return app
