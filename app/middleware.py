"""ASGI middleware around the routes: the last-resort error guard, admission before any
parsing, and the body size limit. Each answers with the service's error body."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI

from app.errors import PayloadTooLargeError, ServiceError, error_response

if TYPE_CHECKING:
    from app.engine.engine import Reservation

log = logging.getLogger("app")
# requests counted in ltp_requests_total and admitted before parsing; TEI's client posts to "/"
INFERENCE_PATHS = ("/classify", "/predict", "/", "/invocations", "/rerank", "/vertex")
RESERVATION = "admission_reservation"  # the key of an admitted request's hold in its state


def declared_length(scope) -> int | None:
    """The body length a request declares (``Content-Length``), if it declares a valid one."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


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
                await error_response(error)(scope, receive, send)


class Admission:
    """Refuse inference requests at once while the backlog is over the wait limit: before
    routing, body parsing or tokenising, so that a refusal costs the event loop almost
    nothing when it matters most. The handler checks again with the request's own deadline.

    An admitted request holds the work its body is expected to bring (``Reservation``, put in
    ``scope["state"]`` for the handler to release as it queues the request), then waits for
    its turn (the app's ``Turns``): requests that arrived with it are decided before any of
    them is parsed, and in a burst a turn of the loop parses only a few admitted requests, so
    the requests arriving meanwhile get their refusals first, not after all the admitted
    ones' parsing. Behind the service's protocol both were done before the request's task
    started; this layer then only releases the hold."""

    def __init__(self, app, fastapi_app: FastAPI) -> None:
        self.app, self.state = app, fastapi_app.state

    async def __call__(self, scope, receive, send):
        # a request the protocol admitted already holds its reservation, and had its turn
        at_socket = RESERVATION in scope.get("state", {})
        try:
            reservation = admit_early(self.state, scope)
        except ServiceError as error:
            return await error_response(error)(scope, receive, send)
        if reservation is None:
            return await self.app(scope, receive, send)
        try:
            if not at_socket:
                await self.state.turns.wait()
            return await self.app(scope, receive, send)
        finally:
            reservation.release()


def admit_early(state, scope) -> Reservation | None:
    """Admission before parsing, asked once a request: by the service's protocol where the
    request's head is parsed (``app.server``), else by ``Admission``. None for requests it
    does not apply to; else the request's hold, kept in its scope's state; or the refusal
    (``ServiceError``, 429), counted in the metrics here."""
    if (scope["type"] != "http" or scope["path"] not in INFERENCE_PATHS
            or scope["method"] != "POST" or not getattr(state, "ready", False)):
        return None
    held = scope.setdefault("state", {})
    if RESERVATION not in held:
        front = state.front
        try:
            held[RESERVATION] = front.engine.admit_early(front.settings.default_model,
                                                         declared_length(scope) or 0)
        except ServiceError as error:
            state.metrics.record_request(None, error.status, error_type=error.type)
            raise
    return held[RESERVATION]


class Turns:
    """At most ``per_turn`` callers go on in one turn of the event loop; ``wait`` always
    yields at least once, and a caller over the count waits, in order of arrival, for a
    later turn. Between two turns the loop reads the sockets, so work that arrives meanwhile
    runs before the rest. A waiting caller sleeps until a turn has room for it: a burst of
    ``n`` waiters costs the loop ``n`` wake-ups, not one per waiter and turn."""

    def __init__(self, per_turn: int) -> None:
        self.per_turn, self._used, self._reset_due = per_turn, 0, False
        self._waiting: deque[asyncio.Future] = deque()

    async def wait(self) -> None:
        await asyncio.sleep(0)
        waiter = self._turn()
        if waiter is not None:
            await waiter

    def start(self, begin: Callable[[], None]) -> None:
        """Call ``begin`` (which starts a request's task) now if this turn has room, else in
        the first later turn that has."""
        waiter = self._turn()
        if waiter is None:
            begin()
        else:
            waiter.add_done_callback(lambda _: begin())

    def _turn(self) -> asyncio.Future | None:
        """None if this turn has room (taken now); else a waiter, done when a later turn's
        room is taken for it."""
        if self._used < self.per_turn and not self._waiting:
            self._take()
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        return waiter

    def _take(self) -> None:
        self._used += 1
        if not self._reset_due:
            asyncio.get_running_loop().call_soon(self._reset)
            self._reset_due = True

    def _reset(self) -> None:
        """A new turn: room for the next ``per_turn`` waiters (who go on in the turn after)."""
        self._used, self._reset_due = 0, False
        while self._waiting and self._used < self.per_turn:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a cancelled waiter takes no room
                waiter.set_result(None)
                self._take()


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not they declare a length.

    Past the limit the rest of the body is read and discarded (up to ``DRAIN_FACTOR`` times
    the limit) before the answer, as a lingering close would: closing a socket with unread
    bytes resets the connection, and the client could lose the 413 while still sending. A
    drained connection stays usable for the next request. A longer body, or a declared
    length over that bound (refused before any byte is read), is cut with
    ``Connection: close``.
    """

    DRAIN_FACTOR = 8

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            if declared > self.DRAIN_FACTOR * self.limit:
                return await error_response(self._refusal(drained=False))(scope, receive, send)
            error = await self._drain(receive, 0, {"more_body": True})
            return await error_response(error)(scope, receive, send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            received = await receive()
            seen += len(received.get("body", b""))
            if seen > self.limit:
                raise await self._drain(receive, seen, received)
            return received

        return await self.app(scope, counting_receive, send)

    async def _drain(self, receive, seen: int, received: dict) -> PayloadTooLargeError:
        """Read and drop the rest of a body over the limit; the 413 to answer with."""
        while received.get("more_body") and seen <= self.DRAIN_FACTOR * self.limit:
            received = await receive()
            seen += len(received.get("body", b""))
        return self._refusal(drained=not received.get("more_body"))

    def _refusal(self, drained: bool) -> PayloadTooLargeError:
        return PayloadTooLargeError(f"request body over {self.limit} bytes",
                                    {} if drained else {"Connection": "close"})
