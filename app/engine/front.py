"""The inference front: admission, tokenisation, enqueue, await the results, assemble."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.engine.batch import Entry, SequenceResult
from app.engine.engine import Engine
from app.errors import (
    DeadlineExceededError,
    InvalidInputError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from app.schemas import ClassifyRequest, ClassifyResponse, LabelScore, Prediction, Usage
from app.settings import Settings
from ltp.artifact import Artifact
from ltp.text import Encoded, encode

# Below this many characters a request is tokenised on the event loop (tens of microseconds);
# longer ones go to a thread so they never stall other requests.
INLINE_TOKENIZE_CHARS = 4096


@dataclass
class Timings:
    tokenize_seconds: float = 0.0
    queue_seconds: float = 0.0
    inference_seconds: float = 0.0


class InferenceFront:
    def __init__(self, engine: Engine, artifacts: dict[str, Artifact], settings: Settings) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.settings = settings

    def model_name(self, requested: str | None) -> str:
        name = requested or self.settings.default_model
        if name not in self.artifacts:
            raise ModelNotFoundError(f"model {name!r} is not loaded; see GET /models")
        return name

    def _admit(self, req: ClassifyRequest) -> list[tuple[str, str | None]]:
        items = req.items()
        if len(items) > self.settings.max_inputs:
            raise PayloadTooLargeError(
                f"{len(items)} inputs; at most {self.settings.max_inputs} per request")
        limit = self.settings.max_text_chars
        for text, pair in items:
            if len(text) + len(pair or "") > limit:
                raise PayloadTooLargeError(f"an input is longer than {limit} characters")
        return items

    def _tokenize(self, artifact: Artifact, items, truncate: bool) -> list[Encoded]:
        texts = [t for t, _ in items]
        pairs = [p for _, p in items]
        max_length = artifact.meta.max_length
        encoded = encode(artifact.tokenizer, texts, pairs if any(p is not None for p in pairs)
                         else None, max_length=max_length, truncate=truncate)
        too_long = [i for i, e in enumerate(encoded) if e.num_tokens > max_length]
        if too_long:
            raise PayloadTooLargeError(
                f"input(s) {too_long} exceed the model's {max_length} tokens; send truncate=true")
        return encoded

    async def classify(self, req: ClassifyRequest, started: float,
                       disconnected: Callable[[], Awaitable[bool]] | None = None,
                       ) -> tuple[ClassifyResponse, Timings]:
        name = self.model_name(req.model)
        items = self._admit(req)
        artifact = self.artifacts[name]
        if req.top_k is not None and req.top_k > len(artifact.meta.labels):
            raise InvalidInputError(f"top_k {req.top_k} > {len(artifact.meta.labels)} labels")
        t0 = time.perf_counter()
        if sum(len(t) + len(p or "") for t, p in items) <= INLINE_TOKENIZE_CHARS:
            encoded = self._tokenize(artifact, items, req.truncate)  # cheaper than a thread hop
        else:
            encoded = await asyncio.to_thread(self._tokenize, artifact, items, req.truncate)
        timings = Timings(tokenize_seconds=time.perf_counter() - t0)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        deadline = started + self.settings.request_timeout_s
        entries = [Entry(model=name, encoded=e, enqueued_at=now, deadline=deadline,
                         future=loop.create_future(), loop=loop,
                         tokenize_seconds=timings.tokenize_seconds) for e in encoded]
        self.engine.submit(entries)
        results = await self._wait(entries, deadline, disconnected)
        timings.queue_seconds = max(r.queue_seconds for r in results)
        timings.inference_seconds = max(r.inference_seconds for r in results)
        return self._response(name, artifact, req, results), timings

    async def _wait(self, entries: list[Entry], deadline: float, disconnected) -> list[SequenceResult]:
        """All results, or an error; on timeout or disconnect the entries are abandoned."""
        gathered = asyncio.gather(*(e.future for e in entries))
        watch = asyncio.ensure_future(_watch(disconnected)) if disconnected else None
        try:
            waiters = {gathered} | ({watch} if watch else set())
            done, _ = await asyncio.wait(waiters, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if gathered in done:
                return gathered.result()
            raise DeadlineExceededError("request deadline passed") if not done else \
                asyncio.CancelledError("client disconnected")
        finally:
            if watch:
                watch.cancel()
            if not gathered.done():
                gathered.cancel()  # marks every entry abandoned: the queue drops them

    def _response(self, name: str, artifact: Artifact, req: ClassifyRequest,
                  results: list[SequenceResult]) -> ClassifyResponse:
        labels = artifact.meta.labels
        predictions = []
        for res in results:
            scores = sorted((LabelScore(label=labels[i], score=p) for i, p in
                             enumerate(res.probabilities)), key=lambda s: -s.score)
            kept = res.kept_tokens_per_layer
            predictions.append(Prediction(
                label=scores[0].label, score=scores[0].score, scores=scores[: req.top_k],
                input_tokens=res.input_tokens,
                kept_tokens=kept[-2] if len(kept) > 1 else kept[-1],
                kept_tokens_per_layer=kept if req.details else None,
            ))
        flops = sum(r.flops for r in results)
        dense = sum(r.flops_dense for r in results)
        usage = Usage(input_tokens=sum(r.input_tokens for r in results), flops=flops,
                      flops_dense=dense, flops_saved_ratio=1 - flops / dense if dense else 0.0)
        return ClassifyResponse(model=name, results=predictions, usage=usage)


async def _watch(disconnected: Callable[[], Awaitable[bool]], every_s: float = 0.05) -> None:
    while not await disconnected():
        await asyncio.sleep(every_s)
