"""HTTP routes of our own API: classify, models, health, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.calls import (
    INFERENCE_ERRORS,
    Authorized,
    Call,
    Front,
    json_response,
    request_body,
    scores,
)
from app.compat import infinity_classify
from app.engine.front import Inference
from app.errors import InvalidInputError, ModelNotFoundError, NotReadyError, UnauthorizedError, responses
from app.schemas import (
    ClassifyRequest,
    ClassifyResponse,
    InfinityClassifyRequest,
    ModelInfo,
    ModelList,
    validate,
)
from ltp.core.heads import labels_given

router = APIRouter()


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


@router.post("/classify", response_model=ClassifyResponse, dependencies=[Authorized],
             responses=responses(*INFERENCE_ERRORS, ModelNotFoundError),
             openapi_extra=request_body(ClassifyRequest))
async def classify(request: Request, front: Front) -> Response:
    """Classify texts or text pairs with the model's head: a softmax over labels, an
    independent sigmoid per label with the labels over their thresholds (multi-label), or
    the value (regression). Also takes Infinity's body (`input`, `model`, `raw_scores`) and
    then answers in Infinity's shape."""
    call = Call(request, front)
    data = await call.json()
    if isinstance(data, dict) and "input" in data and "inputs" not in data:
        return await infinity_classify(call, validate(InfinityClassifyRequest, data))
    body = validate(ClassifyRequest, data)
    labels = call.model(body.model)[1].meta.labels
    if body.top_k is not None and body.top_k > len(labels):
        raise InvalidInputError(f"top_k {body.top_k} > {len(labels)} labels")
    result = await call.run(body.model, body.items(), body.truncate)
    total = call.record(result)
    return json_response(_classify_body(result, body), headers={
        "X-Tokenize-Ms": _ms(result.timings.tokenize_seconds),
        "X-Queue-Ms": _ms(result.timings.queue_seconds),
        "X-Inference-Ms": _ms(result.timings.inference_seconds), "X-Total-Ms": _ms(total),
    })


def _classify_body(result: Inference, body: ClassifyRequest) -> dict:
    head = result.artifact.meta.head
    thresholds = head.label_thresholds(len(result.labels)) if head.multi_label else None
    predictions = []
    for res in result.results:
        ranked = scores(res, result.labels, body.raw_scores)
        pred = {"label": ranked[0][1], "score": ranked[0][0],
                "scores": [{"label": label, "score": s} for s, label in ranked[: body.top_k]]}
        if thresholds is not None:  # decided on the sigmoid scores, raw_scores or not
            pred["labels"] = labels_given(res.probabilities, result.labels, thresholds)
        if head.regression and len(result.labels) == 1:
            pred["value"] = res.logits[0]
        pred |= {"input_tokens": res.input_tokens, "kept_tokens": res.kept_tokens}
        if body.details:
            pred["kept_tokens_per_layer"] = res.kept_tokens_per_layer
        predictions.append(pred)
    flops = sum(r.flops for r in result.results)
    dense = sum(r.flops_dense for r in result.results)
    return {"model": result.model, "results": predictions, "usage": {
        "input_tokens": sum(r.input_tokens for r in result.results), "flops": flops,
        "flops_dense": dense, "flops_saved_ratio": 1 - flops / dense if dense else 0.0}}


@router.get("/models", response_model=ModelList, dependencies=[Authorized],
            responses=responses(UnauthorizedError, NotReadyError))
async def models(request: Request, front: Front) -> ModelList:
    settings = request.app.state.settings
    return ModelList(models=[
        ModelInfo(name=name, default=name == settings.default_model, family=a.meta.family,
                  labels=a.meta.labels, problem_type=a.meta.head.problem_type,
                  label_thresholds=(a.meta.head.label_thresholds(len(a.meta.labels))
                                    if a.meta.head.multi_label else None),
                  max_length=a.meta.max_length,
                  thresholds=[round(t, 6) for t in a.meta.pruning.thresholds()],
                  device=str(a.device), dtype=request.app.state.precisions[name].dtype,
                  engine=request.app.state.precisions[name].engine,
                  dtype_reason=request.app.state.precisions[name].why, eval=a.meta.eval)
        for name, a in front.artifacts.items()
    ])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "alive"}


@router.get("/readyz", responses=responses(NotReadyError))
async def readyz(request: Request) -> dict:
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("models are still loading")
    return {"status": "ready", "models": sorted(request.app.state.front.artifacts)}


PROMETHEUS_TEXT = {200: {"description": "Prometheus text format",
                         "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}}


@router.get("/metrics", response_class=Response, responses=PROMETHEUS_TEXT)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)

