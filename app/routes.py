"""HTTP routes: short handlers over the inference front."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.engine.front import InferenceFront
from app.errors import NotReadyError, UnauthorizedError
from app.schemas import ClassifyRequest, ClassifyResponse, ModelInfo, ModelList

router = APIRouter()

# Dependencies are async on purpose: FastAPI runs plain functions in a thread pool, a hop
# per request that cost more than the checks themselves.


async def get_front(request: Request) -> InferenceFront:
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("models are still loading")
    return request.app.state.front


async def check_api_key(request: Request) -> None:
    key = request.app.state.settings.api_key
    if not key:
        return
    given = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise UnauthorizedError("missing or wrong API key (Authorization: Bearer KEY or X-API-Key)")


Front = Annotated[InferenceFront, Depends(get_front)]
Authorized = Depends(check_api_key)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


@router.post("/classify", response_model=ClassifyResponse, dependencies=[Authorized])
async def classify(body: ClassifyRequest, request: Request, front: Front) -> JSONResponse:
    started = time.monotonic()
    request.state.model = body.model or front.settings.default_model
    response, timings = await front.classify(body, started, request.is_disconnected)
    total = time.monotonic() - started
    request.app.state.metrics.record_request(response.model, 200, total, timings.tokenize_seconds)
    return JSONResponse(response.model_dump(exclude_none=True), headers={
        "X-Tokenize-Ms": _ms(timings.tokenize_seconds), "X-Queue-Ms": _ms(timings.queue_seconds),
        "X-Inference-Ms": _ms(timings.inference_seconds), "X-Total-Ms": _ms(total),
    })


@router.get("/models", response_model=ModelList, dependencies=[Authorized])
async def models(request: Request, front: Front) -> ModelList:
    settings = request.app.state.settings
    return ModelList(models=[
        ModelInfo(name=name, default=name == settings.default_model, family=a.meta.family,
                  labels=a.meta.labels, max_length=a.meta.max_length,
                  thresholds=[round(t, 6) for t in a.meta.pruning.thresholds()],
                  device=str(a.device), dtype=settings.dtype, eval=a.meta.eval)
        for name, a in front.artifacts.items()
    ])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(request: Request) -> dict:
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("models are still loading")
    return {"status": "ready", "models": sorted(request.app.state.front.artifacts)}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
