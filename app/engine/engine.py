"""The engine: per-model bucket queues, a scheduler task on the event loop, and worker
threads that run the backend.

A one-slot hand-off sits between them: the scheduler forms the next batch while the workers
run theirs, and waits while the slot is taken. With several workers, batches run side by
side: on a CPU of few cores, two workers of one torch thread each keep the cores busy while
the other runs its Python between operators, which one worker of two threads cannot.
"""

from __future__ import annotations

import asyncio
import logging
import queue as thread_queue
import threading
import time
from collections.abc import Callable

from app.engine.backend import Backend
from app.engine.batch import Batch, BatchStats, Entry
from app.engine.queue import BucketQueue, QueueLimits
from app.errors import DeadlineExceededError, QueueFullError, ServiceError, ShuttingDownError

log = logging.getLogger(__name__)


class Engine:
    def __init__(self, backend: Backend, limits: QueueLimits, max_wait_s: float,
                 on_batch: Callable[[BatchStats], None] | None = None,
                 on_queue: Callable[[int, int], None] | None = None,
                 on_drop: Callable[[str, int], None] | None = None, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.backend = backend
        self.workers = workers
        self.limits = limits
        self.max_wait_s = max_wait_s
        self.queues = {name: BucketQueue(limits) for name in backend.artifacts}
        self._on_batch = on_batch or (lambda stats: None)
        self._on_queue = on_queue or (lambda n, t: None)
        self._on_drop = on_drop or (lambda reason, n: None)
        self._arrived = asyncio.Event()
        self._freed = asyncio.Event()  # a batch finished: a worker is free
        # a permit per worker for the batch it runs, and one for the batch waiting in the slot
        self._slot_free = asyncio.Semaphore(workers + 1)
        self._handoff: thread_queue.Queue[Batch | None] = thread_queue.Queue()
        self._accepting = False
        self._scheduler: asyncio.Task | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        self._threads = [threading.Thread(target=self._work, name=f"ltp-worker-{i}", daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        self._scheduler = asyncio.create_task(self._schedule(), name="ltp-scheduler")

    async def stop(self, drain_timeout_s: float = 30.0) -> None:
        """Stop intake, finish what is queued, then stop the scheduler and the worker."""
        self._accepting = False
        deadline = time.monotonic() + drain_timeout_s
        while (self.queued() or self._in_flight) and time.monotonic() < deadline:
            self._arrived.set()
            await asyncio.sleep(0.01)
        if self._scheduler is not None:
            self._scheduler.cancel()
        for _ in self._threads:
            self._handoff.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 5.0)

    # -- intake -----------------------------------------------------------------------

    def queued(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def submit(self, entries: list[Entry]) -> None:
        """Queue a request's sequences, all or none."""
        if not self._accepting:
            raise ShuttingDownError("the service is shutting down")
        if self.queued() + len(entries) > self.limits.max_sequences:
            raise QueueFullError(f"queue full ({self.queued()} sequences waiting); retry shortly")
        for entry in entries:
            self.queues[entry.model].put(entry)
        self._report_queue()
        self._arrived.set()

    def _report_queue(self) -> None:
        self._on_queue(self.queued(), sum(q.num_tokens for q in self.queues.values()))

    # -- scheduling -------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            await self._slot_free.acquire()
            batch = await self._next_batch()
            self._in_flight += 1
            self._handoff.put(batch)

    async def _next_batch(self) -> Batch:
        """Wait for work and form the next batch.

        While every worker is busy the batch keeps growing until it is full or a worker is
        free again: waiting costs nothing then, and larger batches cost less per sequence.
        An idle worker gets a batch at once, or after at most ``max_wait_s`` for it to fill.
        """
        while True:
            if not self.queued():
                await self._wait(self._arrived)
                continue
            now = time.monotonic()
            name, q = max(self.queues.items(), key=lambda item: item[1].oldest_age(now))
            full = len(q) >= self.limits.max_batch_size or q.num_tokens >= self.limits.max_batch_tokens
            if not full and self._accepting:
                if self._in_flight >= self.workers:
                    await self._wait(self._arrived, self._freed)
                    continue
                if (wait := self.max_wait_s - q.oldest_age(now)) > 0:
                    await self._wait(self._arrived, timeout=wait)
                    continue
            entries, dropped = q.next_batch(time.monotonic())
            self._drop(dropped)
            self._report_queue()
            if entries:
                return Batch(model=name, entries=entries, formed_at=time.monotonic())

    @staticmethod
    async def _wait(*events: asyncio.Event, timeout: float | None = None) -> None:
        """Until one of ``events`` is set (they are cleared first), or the timeout."""
        for event in events:
            event.clear()
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def _drop(self, dropped) -> None:
        for entry in dropped.expired:
            entry.resolve(DeadlineExceededError("deadline passed while queued"))
        if dropped.expired:
            self._on_drop("deadline", len(dropped.expired))
        if dropped.abandoned:
            self._on_drop("abandoned", len(dropped.abandoned))

    # -- the worker threads -----------------------------------------------------------

    def _work(self) -> None:
        while (batch := self._handoff.get()) is not None:
            try:
                stats = self.backend.run(batch)
                for entry, result in zip(batch.entries, stats.results, strict=True):
                    entry.resolve(result)
                self._on_batch(stats)
            except Exception as exc:  # a failed batch fails its requests, not the service
                log.exception("batch of %d for %s failed", len(batch.entries), batch.model)
                for entry in batch.entries:
                    entry.resolve(ServiceError(f"inference failed: {type(exc).__name__}"))
            finally:
                self._loop.call_soon_threadsafe(self._batch_done)

    def _batch_done(self) -> None:
        self._in_flight -= 1
        self._slot_free.release()
        self._freed.set()
