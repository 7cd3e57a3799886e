"""Adapters for the APIs our users' clients already speak, over the same front.

* text-embeddings-inference (TEI), every route it serves for a classifier, with its request
  and response shapes and timing headers: ``POST /predict``, and the same on ``POST /`` and
  ``POST /invocations`` (what clients given only a base URL call, and SageMaker's), where a
  rerank body (``query``, ``texts``) reranks as TEI's ``/`` does for a one-output model;
  ``POST /rerank``; ``POST /vertex``; ``GET /info``; ``POST /tokenize``; ``POST /decode``;
  ``GET /health``, ``GET /`` and ``GET /ping``.
* The Hugging Face inference API's text-classification body, which ``huggingface_hub``'s
  ``InferenceClient.text_classification`` posts to a base URL: ``{"inputs", "parameters":
  {"top_k", "function_to_apply"}}``, answered with one list per input as that API does.
* Infinity: its ``/classify`` body (``input``, ``model``, ``raw_scores``), answered in its
  shape; our ``/classify`` route hands such bodies here.

Limits, admission, errors and metrics are the front's and the error table's: an adapter
only converts bodies. Where we differ from the original, on purpose: errors use our types
in TEI's ``{"error", "error_type"}`` body (validation is 422, as in TEI 1.9); scores follow
the model's head (``ltp.core.heads``): a multi-label model scores each label with its own
sigmoid (TEI applies a softmax to any model with more than one output) and a regression
model answers its value (TEI applies a sigmoid to a single output); Infinity's
``raw_scores`` returns logits (Infinity accepts and ignores it); Infinity's ``usage`` counts
tokens (Infinity counts characters by default). ``docs/heads.md`` has the table.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

from fastapi import APIRouter, Request, Response

from app.calls import INFERENCE_ERRORS, Authorized, Call, Front, json_response, request_body, scores
from app.engine.front import Inference
from app.errors import (
    InvalidInputError,
    ModelTypeError,
    NotReadyError,
    PayloadTooLargeError,
    UnauthorizedError,
    responses,
)
from app.schemas import (
    DecodeRequest,
    HFParameters,
    InfinityClassifyRequest,
    InfinityClassifyResponse,
    Info,
    PredictRequest,
    Rank,
    RerankRequest,
    ScoreLabel,
    SimpleToken,
    TokenizeRequest,
    VertexRequest,
    parse_json,
    validate,
)
from ltp.core.heads import ranked
from ltp.core.text import fixed_tokenizer

router = APIRouter(tags=["TEI compatible"])
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "int8"}
PREDICTIONS = list[ScoreLabel] | list[list[ScoreLabel]]


def _scored(result, labels: list[str], raw: bool) -> list[dict]:
    return [{"score": s, "label": label} for s, label in scores(result, labels, raw)]


def _int_ms(seconds: float) -> str:
    return str(int(seconds * 1e3))


def _transformed(logits: list[float], function: str) -> list[float]:
    """The Hugging Face API's ``function_to_apply`` on one input's logits."""
    if function == "sigmoid":
        return [1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
                for x in logits]
    if function == "softmax":
        top = max(logits)
        exp = [math.exp(x - top) for x in logits]
        return [e / sum(exp) for e in exp]
    return list(logits)


def _hf_scored(result, labels: list[str], params: HFParameters, raw: bool) -> list[dict]:
    """One input's answer to the Hugging Face API's parameters: best first, ``top_k`` of them."""
    if params.function_to_apply is None:
        return _scored(result, labels, raw)[: params.top_k]
    values = _transformed(result.logits, params.function_to_apply)
    return [{"score": s, "label": label} for s, label in ranked(values, labels)][: params.top_k]


def _headers(result: Inference, total: float, items) -> dict[str, str]:
    """TEI's timing headers (tokenising time per input, as TEI's batch average)."""
    t = result.timings
    return {
        "x-compute-type": str(result.artifact.device.type),
        "x-compute-time": _int_ms(total), "x-total-time": _int_ms(total),
        "x-compute-characters": str(sum(len(a) + len(b or "") for a, b in items)),
        "x-compute-tokens": str(sum(r.input_tokens for r in result.results)),
        "x-tokenization-time": _int_ms(t.tokenize_seconds / len(result.results)),
        "x-queue-time": _int_ms(t.queue_seconds), "x-inference-time": _int_ms(t.inference_seconds),
    }


async def _run(call: Call, items, truncate: bool | None, direction: str) -> Inference:
    """``items`` through the front, cut from TEI's truncation direction."""
    truncate = True if truncate is None else truncate
    return await call.run(None, items, truncate, direction=direction.lower())


Answer = tuple[list, Inference, list]  # the body, the inference, the items it ran


async def _predicted(call: Call, body: PredictRequest) -> Answer:
    """TEI's predict answer (one input: its list; a batch: a list per input), or, with the
    Hugging Face API's ``parameters``, a list per input always."""
    items = body.items()
    result = await _run(call, items, body.truncate, body.truncation_direction)
    labels = result.labels
    if body.parameters is not None:
        answers = [_hf_scored(r, labels, body.parameters, body.raw_scores) for r in result.results]
        return answers, result, items
    answers = [_scored(r, labels, body.raw_scores) for r in result.results]
    return (answers if body.is_batch else answers[0]), result, items


async def _reranked(call: Call, body: RerankRequest) -> Answer:
    """TEI's rerank: the query paired with each text, scored by a one-output model, best first."""
    labels = call.model(None)[1].meta.labels
    if len(labels) != 1:
        raise ModelTypeError(f"model is not a re-ranker model: it has {len(labels)} labels "
                             "(POST /predict classifies)")
    items = [(body.query, text) for text in body.texts]
    result = await _run(call, items, body.truncate, body.truncation_direction)
    ranks = [{"index": i, "score": (r.logits if body.raw_scores else r.probabilities)[0]}
             | ({"text": body.texts[i]} if body.return_text else {})
             for i, r in enumerate(result.results)]
    return sorted(ranks, key=lambda r: -r["score"]), result, items


def _answer(call: Call, answer: Answer) -> Response:
    """Count the success and answer with TEI's timing headers."""
    body, result, items = answer
    total = call.record(result)
    return json_response(body, headers=_headers(result, total, items))


PREDICT_ERRORS = responses(*INFERENCE_ERRORS)


@router.post("/predict", response_model=PREDICTIONS, dependencies=[Authorized],
             responses=PREDICT_ERRORS, openapi_extra=request_body(PredictRequest))
async def predict(request: Request, front: Front) -> Response:
    """TEI's predict: every label with its score, best first; a list of those for a batch."""
    call = Call(request, front)
    return _answer(call, await _predicted(call, validate(PredictRequest, await call.json())))


@router.post("/", response_model=PREDICTIONS | list[Rank], dependencies=[Authorized],
             responses=responses(*INFERENCE_ERRORS, ModelTypeError),
             openapi_extra=request_body(PredictRequest))
@router.post("/invocations", response_model=PREDICTIONS | list[Rank], dependencies=[Authorized],
             responses=responses(*INFERENCE_ERRORS, ModelTypeError),
             openapi_extra=request_body(PredictRequest))
async def default_route(request: Request, front: Front) -> Response:
    """TEI's route for a base URL (and SageMaker's ``/invocations``): a predict body
    predicts; a rerank body (``query``, ``texts``) reranks."""
    call = Call(request, front)
    data = await call.json()
    if isinstance(data, dict) and "query" in data and "inputs" not in data:
        return _answer(call, await _reranked(call, validate(RerankRequest, data)))
    return _answer(call, await _predicted(call, validate(PredictRequest, data)))


@router.post("/rerank", response_model=list[Rank], dependencies=[Authorized],
             responses=responses(*INFERENCE_ERRORS, ModelTypeError),
             openapi_extra=request_body(RerankRequest))
async def rerank(request: Request, front: Front) -> Response:
    """TEI's rerank, for a model with one output (a 424 for a classifier of several labels)."""
    call = Call(request, front)
    return _answer(call, await _reranked(call, validate(RerankRequest, await call.json())))


@router.post("/vertex", dependencies=[Authorized],
             responses=responses(*INFERENCE_ERRORS, ModelTypeError),
             openapi_extra=request_body(VertexRequest))
async def vertex(request: Request, front: Front) -> Response:
    """Vertex AI's body: each instance answered as ``/predict`` (``/rerank`` for a rerank
    body), in ``{"predictions": [...]}``."""
    call = Call(request, front)
    body = validate(VertexRequest, await call.json())
    if len(body.instances) > front.settings.max_inputs:
        raise PayloadTooLargeError(f"{len(body.instances)} instances; at most "
                                   f"{front.settings.max_inputs} per request")

    def run(instance: dict):
        if "query" in instance and "texts" in instance:
            return _reranked(call, validate(RerankRequest, instance))
        return _predicted(call, validate(PredictRequest, instance))

    answers = await asyncio.gather(*(run(i) for i in body.instances))
    if answers:
        call.record(answers[-1][1])
    return json_response({"predictions": [body for body, _, _ in answers]})


@router.get("/info", response_model=Info, dependencies=[Authorized],
            responses=responses(UnauthorizedError, NotReadyError))
async def info(request: Request, front: Front) -> Info:
    """TEI's info, for the default model, with this server's limits."""
    settings = front.settings
    name = settings.default_model
    artifact = front.artifacts[name]
    labels = artifact.meta.labels
    return Info(
        model_id=name, model_dtype=DTYPE_NAMES[request.app.state.precisions[name].dtype],
        engine=request.app.state.precisions[name].engine,
        served_model_name=name,
        model_type={"classifier" if len(labels) > 1 else "reranker": {
            "id2label": {str(i): lab for i, lab in enumerate(labels)},
            "label2id": {lab: i for i, lab in enumerate(labels)}}},
        max_concurrent_requests=settings.max_queue_sequences,
        max_input_length=artifact.meta.max_length, max_batch_tokens=settings.max_batch_tokens,
        max_batch_requests=front.engine.policy.limits.max_batch_size,
        max_client_batch_size=settings.max_inputs,
        auto_truncate=True, tokenization_workers=1, version=request.app.version)


@router.post("/tokenize", response_model=list[list[SimpleToken]], dependencies=[Authorized],
             responses=responses(UnauthorizedError, NotReadyError, InvalidInputError),
             openapi_extra=request_body(TokenizeRequest))
async def tokenize(request: Request, front: Front) -> Response:
    """TEI's tokenize: each input's tokens with ids, text and UTF-8 byte offsets."""
    body = validate(TokenizeRequest, parse_json(await request.body()))
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    front.check_limits([(t, None) for t in texts])
    tokenizer = fixed_tokenizer(front.default.tokenizer, None)
    encodings = tokenizer.encode_batch(texts, add_special_tokens=body.add_special_tokens)
    return json_response([_tokens(text, enc) for text, enc in zip(texts, encodings, strict=True)])


@router.post("/decode", response_model=list[str], dependencies=[Authorized],
             responses=responses(UnauthorizedError, NotReadyError, InvalidInputError,
                                 PayloadTooLargeError),
             openapi_extra=request_body(DecodeRequest))
async def decode(request: Request, front: Front) -> Response:
    """TEI's decode: token ids back to text, one string per sequence."""
    body = validate(DecodeRequest, parse_json(await request.body()))
    batch = body.ids if body.ids and isinstance(body.ids[0], list) else [body.ids]
    if len(batch) > front.settings.max_inputs:
        raise PayloadTooLargeError(f"{len(batch)} sequences; at most {front.settings.max_inputs}")
    tokenizer = front.default.tokenizer
    vocab = len(tokenizer)
    unknown = next((i for ids in batch for i in ids if i >= vocab), None)
    if unknown is not None:
        raise InvalidInputError(f"token id {unknown} is not in the vocabulary ({vocab} ids)")
    if sum(len(ids) for ids in batch) > front.settings.max_text_chars:
        raise PayloadTooLargeError(f"more than {front.settings.max_text_chars} token ids")
    return json_response(tokenizer.batch_decode(batch, skip_special_tokens=body.skip_special_tokens))


EMPTY_OK = {200: {"description": "ready: an empty body", "content": None}}


@router.get("/health", response_class=Response, responses=EMPTY_OK | responses(NotReadyError))
@router.get("/ping", response_class=Response, include_in_schema=False)
@router.get("/", response_class=Response, include_in_schema=False)
async def health(request: Request) -> Response:
    """TEI's health (also ``GET /`` and SageMaker's ``GET /ping``): 200 with an empty body
    once the models are loaded and warmed up, else 503."""
    if not getattr(request.app.state, "ready", False):
        raise NotReadyError("models are still loading")
    return Response(status_code=200)


def _tokens(text: str, encoding) -> list[dict]:
    """Tokens with byte offsets; special tokens carry their vocabulary text and no offsets."""
    raw = text.encode()
    byte_at = [0] * (len(text) + 1)  # character offset -> byte offset
    for i, ch in enumerate(text):
        byte_at[i + 1] = byte_at[i] + len(ch.encode())
    out = []
    for token_id, token, special, (start, stop) in zip(
            encoding.ids, encoding.tokens, encoding.special_tokens_mask, encoding.offsets,
            strict=True):
        if special:
            out.append({"id": token_id, "text": token, "special": True, "start": None, "stop": None})
        else:
            b0, b1 = byte_at[start], byte_at[stop]
            out.append({"id": token_id, "text": raw[b0:b1].decode(errors="replace"),
                        "special": False, "start": b0, "stop": b1})
    return out


async def infinity_classify(call: Call, body: InfinityClassifyRequest) -> Response:
    """Infinity's classify: one list of every label's score per input, best first."""
    front = call.front
    model = body.model
    if model not in front.artifacts and len(front.artifacts) == 1:
        model = None  # Infinity serves its one model whatever name is sent
    if model == "default/not-specified":
        model = None
    result: Inference = await call.run(model, [(t, None) for t in body.input], True)
    call.record(result)
    tokens = sum(r.input_tokens for r in result.results)
    return json_response(InfinityClassifyResponse(
        data=[_scored(r, result.labels, body.raw_scores) for r in result.results],
        model=result.model, usage={"prompt_tokens": tokens, "total_tokens": tokens},
        id=f"ltp-{uuid.uuid4()}", created=int(time.time())).model_dump())

