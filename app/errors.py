"""One error hierarchy for the service, mapped to HTTP statuses in one table."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a client may see: a message, a type name and a status."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInputError(ServiceError):
    status, type = 422, "invalid_input"


class PayloadTooLargeError(ServiceError):
    status, type = 413, "payload_too_large"


class ModelNotFoundError(ServiceError):
    status, type = 404, "model_not_found"


class UnauthorizedError(ServiceError):
    status, type = 401, "unauthorized"


class QueueFullError(ServiceError):
    status, type = 429, "queue_full"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


class DeadlineExceededError(ServiceError):
    status, type = 504, "deadline_exceeded"


class NotReadyError(ServiceError):
    status, type = 503, "not_ready"


class ShuttingDownError(ServiceError):
    status, type = 503, "shutting_down"


def error_body(error: ServiceError) -> dict:
    return {"error": error.message, "type": error.type}
