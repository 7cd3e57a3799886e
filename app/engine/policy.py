"""The batching policy: which sequences run next, when, and whom to refuse.

It owns the per-model queues, the named limits and a cost model per model; the engine
thread only executes the batches it is handed. No torch, no HTTP, no event loop: every
decision takes ``now`` as an argument, so the policy is tested with a fake clock.

* **Admission by expected wait.** The backlog is the work ahead of a new request, in
  seconds: what is queued (by each model's measured cost per token and per batch) plus
  what the busy workers still have to do, spread over the workers. A request is refused
  (429, ``Retry-After`` from the backlog) when the backlog exceeds ``max_queue_wait_s`` or
  the request's own deadline, so accepted requests start within that wait, and refusals
  cost no tokenising: the backlog alone decides, before the body is read.
* **Batches.** The model whose oldest sequence has waited longest goes next; its batch is
  formed by the bucket queue (oldest sequence first, nearest lengths around it), within
  ``max_batch_s`` of compute by the cost model. While every worker is busy the batch keeps
  growing; an idle worker takes one at once, or after ``max_wait_s`` for it to fill.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from app.engine.cost import CostModel, LengthModel
from app.engine.queue import BucketQueue, Dropped, Queueable, QueueLimits
from app.errors import DeadlineExceededError, OverloadedError


@dataclass
class Decision:
    """What the scheduler does next: run ``entries`` of ``model`` now, or wait."""

    model: str | None = None
    entries: list | None = None
    dropped: Dropped | None = None
    wait_s: float | None = None  # None with no entries: wait for an arrival or a free worker


class BatchPolicy:
    def __init__(self, models: list[str], limits: QueueLimits, workers: int) -> None:
        self.limits, self.workers = limits, workers
        self.queues = {name: BucketQueue(limits) for name in models}
        self.costs = {name: CostModel() for name in models}
        self.lengths = {name: LengthModel() for name in models}
        self._running: dict[int, tuple[str, float]] = {}  # batch id -> (model, expected end)
        self._ids = itertools.count()
        self._reserved_s = 0.0  # requests admitted before parsing, not yet queued

    # -- state --------------------------------------------------------------------------

    def queued(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def queued_tokens(self) -> int:
        return sum(q.num_tokens for q in self.queues.values())

    @property
    def busy(self) -> int:
        return len(self._running)

    def backlog_seconds(self, now: float) -> float:
        """Expected seconds before a sequence that arrives now starts computing."""
        size = self.limits.max_batch_size
        work = sum(self.costs[name].seconds(len(q), q.num_tokens, size)
                   for name, q in self.queues.items())
        work += sum(max(0.0, end - now) for _, end in self._running.values())
        return (work + self._reserved_s) / self.workers

    def reserve(self, model: str, chars: int, max_tokens: int) -> float:
        """Count a request admitted before parsing as the work of ``chars`` characters of
        ``model``, at most one sequence of ``max_tokens``, until it is queued (``release``),
        so that requests arriving together are each decided on the ones admitted before
        them; returns the seconds reserved. The cap keeps a body that will be refused, or
        whose texts will be cut, from holding more than it can bring for its parsing's
        moment; once queued, a request counts all its sequences."""
        cost = self.costs[model]
        tokens = min(self.lengths[model].tokens(chars), max_tokens)
        seconds = cost.per_batch_s / self.limits.max_batch_size + cost.per_token_s * tokens
        self._reserved_s += seconds
        return seconds

    def release(self, seconds: float) -> None:
        self._reserved_s = max(0.0, self._reserved_s - seconds)

    # -- admission ----------------------------------------------------------------------

    def check_admission(self, now: float, deadline: float | None = None) -> None:
        """Refuse with ``OverloadedError`` when the work ahead would not start in time."""
        if deadline is not None and deadline <= now:
            raise DeadlineExceededError("request deadline passed before admission")
        backlog = self.backlog_seconds(now)
        limit = self.limits.max_queue_wait_s
        if deadline is not None:
            limit = min(limit, deadline - now)
        if backlog > 0 and backlog > limit:
            raise OverloadedError(
                f"overloaded: about {backlog * 1e3:.0f} ms of work queued, over the "
                f"{limit * 1e3:.0f} ms this request may wait; retry later", retry_after_s=backlog)

    def admit(self, entries: list[Queueable], now: float, deadline: float | None = None) -> None:
        """Queue a request's sequences, all or none."""
        self.check_admission(now, deadline)
        if self.queued() + len(entries) > self.limits.max_sequences:
            raise OverloadedError(
                f"queue full ({self.queued()} sequences waiting); retry later",
                retry_after_s=self.backlog_seconds(now))
        for entry in entries:
            self.queues[entry.model].put(entry)

    # -- batches ------------------------------------------------------------------------

    def decide(self, now: float, accepting: bool = True) -> Decision:
        """The next batch to run, or how long to wait for one."""
        if not self.queued():
            return Decision()
        name, q = max(self.queues.items(), key=lambda item: item[1].oldest_age(now))
        cap = self.token_cap(name)
        full = (len(q) >= self.limits.max_batch_size or q.num_tokens >= self.limits.max_batch_tokens
                or (cap is not None and q.num_tokens >= cap))
        if self.busy >= self.workers:
            return Decision()  # the batch grows until a worker is free
        if not full and accepting:
            if (wait := self.limits.max_wait_s - q.oldest_age(now)) > 0:
                return Decision(wait_s=wait)
        entries, dropped = q.next_batch(now, cap)
        return Decision(model=name, entries=entries, dropped=dropped)

    def token_cap(self, model: str) -> int | None:
        """Most real tokens in one batch of ``model`` so that it computes within
        ``max_batch_s`` by the cost model: a request's latency is its wait plus its batch,
        and in the packed forward the cost is nearly linear in tokens, so smaller batches
        cost little throughput."""
        if self.limits.max_batch_s <= 0:
            return None
        cost = self.costs[model]
        room = self.limits.max_batch_s - cost.per_batch_s
        return max(1, int(room / max(cost.per_token_s, 1e-9)))

    def started(self, model: str, entries: list[Queueable], now: float) -> int:
        """A batch went to a worker; returns its id for ``finished``."""
        batch_id = next(self._ids)
        tokens = sum(e.num_tokens for e in entries)
        expected = self.costs[model].seconds(len(entries), tokens, self.limits.max_batch_size)
        self._running[batch_id] = (model, now + expected)
        return batch_id

    def finished(self, batch_id: int, tokens: int | None = None, seconds: float | None = None,
                 texts: tuple[int, int, int] | None = None) -> None:
        """A batch ended; with its real tokens and the worker's seconds (tokenising and
        forward), the cost model learns; with ``texts``, the (count, characters, tokens) of
        the texts it tokenised, the length model learns."""
        model, _ = self._running.pop(batch_id)
        if tokens and seconds is not None:
            self.costs[model].observe(tokens, seconds)
        if texts is not None and texts[0]:
            count, chars, tokens = texts
            self.lengths[model].observe(chars, tokens, count)
