"""One error hierarchy for the service, mapped to HTTP statuses in one table.

Every 4xx and 5xx answer has the same body, ``{"error": message, "error_type": type}``: the
names text-embeddings-inference uses, so its clients read our errors unchanged.
"""

from __future__ import annotations

import math

import orjson
from pydantic import BaseModel, Field
from starlette.responses import Response


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="what went wrong, for a person")
    error_type: str = Field(description="a stable machine-readable kind, e.g. `overloaded`")


class ServiceError(Exception):
    """Base of every error a client may see: a message, a type name and a status."""

    status = 500
    type = "internal_error"
    description = "unexpected server error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.message, "error_type": self.type}


class BadRequestError(ServiceError):
    status, type, description = 400, "bad_request", "malformed request"


class UnauthorizedError(ServiceError):
    status, type, description = 401, "unauthorized", "missing or wrong API key"


class NotFoundError(ServiceError):
    status, type, description = 404, "not_found", "no such route"


class ModelNotFoundError(NotFoundError):
    type, description = "model_not_found", "no such model"


class MethodNotAllowedError(ServiceError):
    status, type, description = 405, "method_not_allowed", "the route does not take this method"


class PayloadTooLargeError(ServiceError):
    status, type, description = 413, "payload_too_large", "body, inputs or texts over a limit"


class InvalidInputError(ServiceError):
    status, type, description = 422, "invalid_input", "invalid JSON, text or field"


class OverloadedError(ServiceError):
    """Refused at admission: the work ahead would not start within the wait limit."""

    status, type, description = 429, "overloaded", "expected wait over the limit; see Retry-After"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, {"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class ClientClosedError(ServiceError):
    """The client went away before its answer was ready (nginx's 499); nobody reads it."""

    status, type, description = 499, "client_closed", "the client closed the connection"


class NotReadyError(ServiceError):
    status, type, description = 503, "not_ready", "models still loading, or shutting down"


class ShuttingDownError(NotReadyError):
    type = "shutting_down"


class DeadlineExceededError(ServiceError):
    status, type, description = 504, "deadline_exceeded", "the request's deadline passed"


class ModelTypeError(ServiceError):
    """A route the model's head cannot answer (TEI's: rerank on a many-label classifier)."""

    status, type, description = 424, "model_type", "the model's head does not do what the route asks"


class InferenceFailedError(ServiceError):
    status, type, description = 500, "inference_failed", "the model's forward pass failed"


def responses(*errors: type[ServiceError]) -> dict[int, dict]:
    """OpenAPI ``responses`` for a route: each status it can return, with the error schema."""
    table: dict[int, list[str]] = {}
    for error in (*errors, ServiceError):
        table.setdefault(error.status, []).append(f"`{error.type}`: {error.description}")
    return {status: {"model": ErrorBody, "description": "; ".join(lines)}
            for status, lines in sorted(table.items())}


def error_response(error: ServiceError) -> Response:
    """The one writer of error answers: the routes' handlers return it, the middleware
    sends it as an ASGI app."""
    return Response(orjson.dumps(error.body()), status_code=error.status,
                    media_type="application/json", headers=error.headers)
