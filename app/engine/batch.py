"""The typed objects that flow through the engine: entry -> batch -> batch result."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ltp.core.text import Encoded


@dataclass(frozen=True)
class Text:
    """A sequence as the request sent it, still to tokenise: the worker that runs its batch
    tokenises it (``Backend.tokenize``), so the event loop never does. Until then the queue
    orders and costs it by ``num_tokens``, an estimate from its characters."""

    text: str
    pair: str | None
    truncate: bool
    direction: str  # the side cut when truncating: "right" or "left"
    num_tokens: int
    index: int  # its place in the request, for an error message

    @property
    def chars(self) -> int:
        return len(self.text) + len(self.pair or "")


@dataclass
class Entry:
    """One sequence waiting for inference (tokenised, or a ``Text`` until its batch runs);
    resolved through ``future``."""

    model: str
    encoded: Encoded | Text
    enqueued_at: float
    deadline: float
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop

    @property
    def num_tokens(self) -> int:
        return self.encoded.num_tokens

    def abandoned(self) -> bool:
        """The client gave up (its request was cancelled or already failed)."""
        return self.future.done()

    def resolve(self, result: SequenceResult | BaseException) -> None:
        """Hand the result to the waiting request, from any thread."""

        def settle() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


@dataclass
class Batch:
    model: str
    entries: list[Entry]
    formed_at: float

    @property
    def padded_tokens(self) -> int:
        return len(self.entries) * max(e.num_tokens for e in self.entries)

    @property
    def num_tokens(self) -> int:
        return sum(e.num_tokens for e in self.entries)


@dataclass
class SequenceResult:
    """What one sequence gets back from a batch."""

    probabilities: list[float]
    logits: list[float]
    input_tokens: int
    kept_tokens_per_layer: list[int]
    flops: float
    flops_dense: float
    queue_seconds: float
    inference_seconds: float
    batch_size: int
    tokenize_seconds: float = 0.0  # its share of its batch's tokenising

    @property
    def kept_tokens(self) -> int:
        """Tokens left after the last layer that prunes (the last layer keeps one token)."""
        kept = self.kept_tokens_per_layer
        return kept[-2] if len(kept) > 1 else kept[-1]


@dataclass
class BatchStats:
    """Per-batch figures for metrics."""

    model: str
    size: int
    num_tokens: int
    padded_tokens: int
    seconds: float  # the forward
    results: list[SequenceResult] = field(default_factory=list)
    tokenize_seconds: float = 0.0
    refused: list[tuple[Entry, Exception]] = field(default_factory=list)  # not computed
    texts: int = 0  # sequences tokenised by the worker: how many, their characters, tokens
    text_chars: int = 0
    text_tokens: int = 0
