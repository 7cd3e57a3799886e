"""What every route shares: dependencies, the life of one inference call, response helpers.

An inference route runs in a fixed order: admission by the backlog first, in the middleware
(a refusal costs no body parsing), then the body, the model resolved once, then the front
(admission with the request's deadline, before tokenising); a watcher on the connection
abandons the request's queued work the moment its client goes away.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Annotated

import orjson
from fastapi import Depends, Request, Response

from app.engine.front import Inference, InferenceFront
from app.errors import (
    DeadlineExceededError,
    InferenceFailedError,
    InvalidInputError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from app.middleware import RESERVATION
from app.schemas import parse_json
from ltp.core.artifact import Artifact

log = logging.getLogger("app")

TIMEOUT_HEADER = "x-request-timeout-ms"
# every inference route can answer these, besides its own
INFERENCE_ERRORS = (UnauthorizedError, PayloadTooLargeError, InvalidInputError, OverloadedError,
                    NotReadyError, DeadlineExceededError, InferenceFailedError)

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


def json_response(data, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers=headers)


def request_body(model) -> dict:
    """OpenAPI ``requestBody`` for a route that parses its own body (see ``app.main``)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{model.__name__}"}}}}}


class Call:
    """One inference request: admitted, parsed, run, with the client watched throughout."""

    def __init__(self, request: Request, front: InferenceFront) -> None:
        self.request, self.front = request, front
        self.started = request.state.started = time.monotonic()
        timeout = request.headers.get(TIMEOUT_HEADER)
        try:
            timeout_ms = float(timeout) if timeout is not None else None
        except ValueError:
            raise InvalidInputError(f"{TIMEOUT_HEADER} must be a number of milliseconds") from None
        self.deadline = front.deadline(self.started, timeout_ms)
        self._model: tuple[str, Artifact] | None = None

    async def json(self):
        return parse_json(await self.request.body())

    def model(self, requested: str | None) -> tuple[str, Artifact]:
        """The model this call runs, resolved once (its name and artifact)."""
        if self._model is None:
            self._model = self.front.resolve(requested)
            self.request.state.model = self._model[0]
        return self._model

    async def run(self, model: str | None, items, truncate: bool,
                  direction: str = "right") -> Inference:
        """Run ``items`` through the front, cut from ``direction`` where truncating."""
        resolved = self.model(model)
        watch = asyncio.ensure_future(_until_disconnect(self.request))
        held = getattr(self.request.state, RESERVATION, None)  # from admission before parsing
        try:
            result = await self.front.infer(resolved, items, truncate, self.started,
                                            self.deadline, disconnected=watch,
                                            direction=direction, reservation=held)
        finally:
            watch.cancel()
        self.request.state.model = result.model
        return result

    def record(self, result: Inference) -> float:
        """Count the success; returns the request's seconds so far."""
        total = time.monotonic() - self.started
        self.request.app.state.metrics.record_request(result.model, 200, total,
                                                      result.timings.tokenize_seconds)
        return total


async def _until_disconnect(request: Request) -> None:
    """Returns when the client has gone: the server's receive answers http.disconnect then."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def scores(result, labels: list[str], raw: bool) -> list[tuple[float, str]]:
    """(score, label) for every label, best first: probabilities, or logits when ``raw``."""
    values = result.logits if raw else result.probabilities
    return sorted(zip(values, labels, strict=True), key=lambda s: -s[0])

