"""Adapters for the APIs our users' clients already speak, over the same front.

* text-embeddings-inference (TEI): ``POST /predict``, ``GET /info``, ``POST /tokenize``, with
  TEI's request and response shapes and timing headers.
* Infinity: its ``/classify`` body (``input``, ``model``, ``raw_scores``), answered in its
  shape; our ``/classify`` route hands such bodies here.

Limits, admission, errors and metrics are the front's and the error table's: an adapter
only converts bodies. Where we differ from the original, on purpose: errors use our types
in TEI's ``{"error", "error_type"}`` body (validation is 422, as in TEI 1.9); Infinity's
``raw_scores`` returns logits (Infinity accepts and ignores it); Infinity's ``usage`` counts
tokens (Infinity counts characters by default).
"""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request, Response

from app.calls import INFERENCE_ERRORS, Authorized, Call, Front, json_response, request_body, scores
from app.engine.front import Inference
from app.errors import InvalidInputError, NotReadyError, UnauthorizedError, responses
from app.schemas import (
    InfinityClassifyRequest,
    InfinityClassifyResponse,
    Info,
    PredictRequest,
    ScoreLabel,
    SimpleToken,
    TokenizeRequest,
    parse_json,
    validate,
)
from ltp.core.text import encode, fixed_tokenizer

router = APIRouter(tags=["TEI compatible"])
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "int8"}


def _scored(result, labels: list[str], raw: bool) -> list[dict]:
    return [{"score": s, "label": label} for s, label in scores(result, labels, raw)]


def _int_ms(seconds: float) -> str:
    return str(int(seconds * 1e3))


@router.post("/predict", response_model=list[ScoreLabel] | list[list[ScoreLabel]],
             dependencies=[Authorized], responses=responses(*INFERENCE_ERRORS),
             openapi_extra=request_body(PredictRequest))
async def predict(request: Request, front: Front) -> Response:
    """TEI's predict: every label with its score, best first; a list of those for a batch."""
    call = Call(request, front)
    body = validate(PredictRequest, await call.json())
    items = body.items()
    truncate = True if body.truncate is None else body.truncate
    left = body.truncation_direction.lower() == "left" and truncate
    result = await call.run(None, items, truncate,
                            tokenize=_left_truncating(call.front, items) if left else None)
    total = call.record(result)
    answers = [_scored(r, result.labels, body.raw_scores) for r in result.results]
    per_item = len(result.results)
    t = result.timings
    return json_response(answers if body.is_batch else answers[0], headers={
        "x-compute-type": str(result.artifact.device.type),
        "x-compute-time": _int_ms(total), "x-total-time": _int_ms(total),
        "x-compute-characters": str(sum(len(a) + len(b or "") for a, b in items)),
        "x-compute-tokens": str(sum(r.input_tokens for r in result.results)),
        "x-tokenization-time": _int_ms(t.tokenize_seconds / per_item),
        "x-queue-time": _int_ms(t.queue_seconds), "x-inference-time": _int_ms(t.inference_seconds),
    })


def _left_truncating(front, items):
    """A tokenising function for ``items`` that cuts from the left, as TEI's ``Left``."""
    artifact = front.artifacts[front.model_name(None)]
    texts, pairs = [a for a, _ in items], [b for _, b in items]
    return lambda: encode(artifact.tokenizer, texts, pairs, artifact.meta.max_length,
                          direction="left")


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
        model_type={"classifier": {"id2label": {str(i): lab for i, lab in enumerate(labels)},
                                   "label2id": {lab: i for i, lab in enumerate(labels)}}},
        max_concurrent_requests=settings.max_queue_sequences,
        max_input_length=artifact.meta.max_length, max_batch_tokens=settings.max_batch_tokens,
        max_batch_requests=settings.max_batch_size, max_client_batch_size=settings.max_inputs,
        auto_truncate=True, tokenization_workers=1, version=request.app.version)


@router.post("/tokenize", response_model=list[list[SimpleToken]], dependencies=[Authorized],
             responses=responses(UnauthorizedError, NotReadyError, InvalidInputError),
             openapi_extra=request_body(TokenizeRequest))
async def tokenize(request: Request, front: Front) -> Response:
    """TEI's tokenize: each input's tokens with ids, text and UTF-8 byte offsets."""
    body = validate(TokenizeRequest, parse_json(await request.body()))
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    front.check_limits([(t, None) for t in texts])
    tokenizer = fixed_tokenizer(front.artifacts[front.settings.default_model].tokenizer, None)
    encodings = tokenizer.encode_batch(texts, add_special_tokens=body.add_special_tokens)
    return json_response([_tokens(text, enc) for text, enc in zip(texts, encodings, strict=True)])


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

