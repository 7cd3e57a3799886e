"""The inference front: limits, admission, enqueue, await the results.

Every route (ours, the TEI- and Infinity-shaped ones) calls ``infer`` with plain texts and
turns the ``Inference`` it returns into its own response shape: limits, admission, deadlines
and disconnects are handled here once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

from app.engine.batch import Entry, SequenceResult, Text
from app.engine.engine import Engine, Reservation
from app.errors import (
    ClientClosedError,
    DeadlineExceededError,
    InvalidInputError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from app.settings import Settings
from ltp.core.artifact import Artifact

SHOWN_NAME_CHARS = 40  # of an unknown model name, in the error message


@dataclass
class Timings:
    tokenize_seconds: float = 0.0
    queue_seconds: float = 0.0
    inference_seconds: float = 0.0


@dataclass
class Inference:
    """What a route gets back: the model, one result per input, and where the time went."""

    model: str
    artifact: Artifact
    results: list[SequenceResult]
    timings: Timings = field(default_factory=Timings)

    @property
    def labels(self) -> list[str]:
        return self.artifact.meta.labels


class InferenceFront:
    def __init__(self, engine: Engine, artifacts: dict[str, Artifact], settings: Settings) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.settings = settings

    def resolve(self, requested: str | None) -> tuple[str, Artifact]:
        """The model a request names (the default when it names none) and its artifact: the
        one place a model name is checked (its length against ``max_model_name_chars``)."""
        name = requested or self.settings.default_model
        if len(name) > self.settings.max_model_name_chars:
            raise InvalidInputError(
                f"model names are at most {self.settings.max_model_name_chars} characters")
        if name not in self.artifacts:
            shown = name if len(name) <= SHOWN_NAME_CHARS else name[:SHOWN_NAME_CHARS] + "..."
            raise ModelNotFoundError(f"model {shown!r} is not loaded; see GET /models")
        return name, self.artifacts[name]

    @property
    def default(self) -> Artifact:
        return self.artifacts[self.settings.default_model]

    def deadline(self, started: float, timeout_ms: float | None) -> float:
        """The request's deadline: the client's timeout, capped by the server's."""
        timeout_s = self.settings.request_timeout_s
        if timeout_ms is not None:
            timeout_s = min(timeout_s, max(0.0, timeout_ms / 1e3))
        return started + timeout_s

    def check_limits(self, items: list[tuple[str, str | None]]) -> None:
        if len(items) > self.settings.max_inputs:
            raise PayloadTooLargeError(
                f"{len(items)} inputs; at most {self.settings.max_inputs} per request")
        limit = self.settings.max_text_chars
        for text, pair in items:
            if len(text) + len(pair or "") > limit:
                raise PayloadTooLargeError(f"an input is longer than {limit} characters")

    async def infer(self, model: tuple[str, Artifact], items: list[tuple[str, str | None]],
                    truncate: bool, started: float, deadline: float,
                    disconnected: Awaitable | None = None, direction: str = "right",
                    reservation: Reservation | None = None) -> Inference:
        """Classify ``items`` (text, optional second text) with ``model`` (as ``resolve``
        returns it), within ``deadline``, cutting from ``direction`` where truncating.

        ``disconnected`` completes when the client goes; ``reservation``, the work held for
        the request since its admission before parsing, is released here. Admission with the
        request's deadline is asked here, once; the policy decides it again only as it queues
        the sequences (``BatchPolicy.admit``, all or none). The texts are queued as they
        came, with the tokens the policy expects of them: the worker that runs their batch
        tokenises them, so the event loop spends no time on it.
        """
        name, artifact = model
        if reservation is not None:  # from here its sequences count themselves
            reservation.release()
        self.check_limits(items)
        self.engine.check_admission(deadline)
        max_length = artifact.meta.max_length
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        entries = []
        for index, (text, pair) in enumerate(items):
            expected = self.engine.estimate_tokens(name, len(text) + len(pair or ""))
            sequence = Text(text, pair, truncate, direction,
                            min(expected, max_length) if truncate else expected, index)
            entries.append(Entry(model=name, encoded=sequence, enqueued_at=now,
                                 deadline=deadline, future=loop.create_future(), loop=loop))
        self.engine.submit(entries, deadline)
        results = await self._wait(entries, deadline, disconnected)
        timings = Timings(tokenize_seconds=sum(r.tokenize_seconds for r in results),
                          queue_seconds=max(r.queue_seconds for r in results),
                          inference_seconds=max(r.inference_seconds for r in results))
        return Inference(name, artifact, results, timings)

    async def _wait(self, entries: list[Entry], deadline: float,
                    disconnected: Awaitable | None) -> list[SequenceResult]:
        """All results, or an error; on timeout or disconnect the entries are abandoned."""
        gathered = asyncio.gather(*(e.future for e in entries))
        waiters = {gathered} | ({disconnected} if disconnected is not None else set())
        try:
            done, _ = await asyncio.wait(waiters, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if gathered in done:
                return gathered.result()
            if done:
                raise ClientClosedError("client closed the connection before the answer")
            raise DeadlineExceededError("request deadline passed")
        finally:
            if not gathered.done():
                gathered.cancel()  # marks every entry abandoned: the queue drops them
                gathered.add_done_callback(_retrieve)  # nobody awaits it any more


def _retrieve(future: asyncio.Future) -> None:
    """Mark a future's outcome as seen, so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()
