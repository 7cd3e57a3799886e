"""The engine: a scheduler task on the event loop that asks the batching policy what to run,
and worker threads that run it on the backend.

The scheduler forms a batch the moment a worker is free and hands it over at once. With
several workers, batches run side by side: on a CPU of few cores, two
workers of one torch thread each keep the cores busy while the other runs its Python between
operators, which one worker of two threads cannot.

Idle workers (``idle_workers``, the service's default) run under Linux's ``SCHED_IDLE``: the
event loop thread, which reads every request and answers refusals and probes, then runs
first whenever it has work, instead of sharing the cores with inference equally. Under
overload that halves the refusals' latency (``docs/service.md``); inference gets every
cycle the loop leaves, so throughput is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue as thread_queue
import threading
import time
from collections.abc import Callable

from app.engine.backend import Backend
from app.engine.batch import Batch, BatchStats, Entry
from app.engine.policy import BatchPolicy
from app.engine.queue import Dropped, QueueLimits
from app.errors import DeadlineExceededError, InferenceFailedError, ShuttingDownError
from app.memory import HeapTrimmer

log = logging.getLogger(__name__)


def run_idle() -> bool:
    """Put the calling thread, and the threads it starts from now on, under ``SCHED_IDLE``:
    it runs only when no other thread of its cgroup wants the core. False, logged, where
    the platform has no such policy or refuses it (the thread then stays as it was)."""
    if not hasattr(os, "SCHED_IDLE"):
        log.info("no SCHED_IDLE on this platform: the workers run at normal priority")
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError as error:
        log.warning("the workers run at normal priority: SCHED_IDLE refused (%s)", error)
        return False
    return True


class Reservation:
    """Work held for a request admitted before parsing; ``release`` once it is queued, or
    when it ends without being queued (idempotent)."""

    def __init__(self, policy: BatchPolicy, seconds: float) -> None:
        self._policy, self._seconds = policy, seconds

    def release(self) -> None:
        self._policy.release(self._seconds)
        self._seconds = 0.0


class Engine:
    def __init__(self, backend: Backend, limits: QueueLimits,
                 on_batch: Callable[[BatchStats], None] | None = None,
                 on_queue: Callable[[int, int], None] | None = None,
                 on_drop: Callable[[str, int], None] | None = None, workers: int = 1,
                 trimmer: HeapTrimmer | None = None, idle_workers: bool = False) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.backend = backend
        self.workers = workers
        self.idle_workers = idle_workers
        self.policy = BatchPolicy(list(backend.artifacts), limits, workers)
        self.trimmer = trimmer
        self._on_batch = on_batch or (lambda stats: None)
        self._on_queue = on_queue or (lambda n, t: None)
        self._on_drop = on_drop or (lambda reason, n: None)
        self._wake = asyncio.Event()  # an arrival, or a batch finished
        # a permit per worker: a batch is formed when a worker is free to run it at once, so
        # it goes on growing until then and never waits, formed, behind another batch
        self._slot_free = asyncio.Semaphore(workers)
        self._handoff: thread_queue.Queue[tuple[Batch, int] | None] = thread_queue.Queue()
        self._accepting = False
        self._scheduler: asyncio.Task | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

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
        """Stop intake, finish what is queued, then stop the scheduler and the workers."""
        self._accepting = False
        deadline = time.monotonic() + drain_timeout_s
        while (self.queued() or self.policy.busy) and time.monotonic() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)
        if self._scheduler is not None:
            self._scheduler.cancel()
        for _ in self._threads:
            self._handoff.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 5.0)

    # -- intake -----------------------------------------------------------------------

    def queued(self) -> int:
        return self.policy.queued()

    def check_admission(self, deadline: float | None = None) -> None:
        """Refuse now (429) when the work ahead would not start within the wait limit."""
        if not self._accepting:
            raise ShuttingDownError("the service is shutting down")
        self.policy.check_admission(time.monotonic(), deadline)

    def admit_early(self, model: str, chars: int) -> Reservation:
        """Admission before parsing: refuse now (429), or hold the expected work of a body
        of ``chars`` characters for ``model`` until the request is queued or ends."""
        self.check_admission()
        max_length = self.backend.artifacts[model].meta.max_length
        return Reservation(self.policy, self.policy.reserve(model, chars, max_length))

    def estimate_tokens(self, model: str, chars: int) -> int:
        """The tokens a text of ``chars`` characters is expected to have (before the worker
        tokenises it), as the policy learns it."""
        return self.policy.lengths[model].tokens(chars)

    def submit(self, entries: list[Entry], deadline: float | None = None) -> None:
        """Queue a request's sequences, all or none."""
        if not self._accepting:
            raise ShuttingDownError("the service is shutting down")
        self.policy.admit(entries, time.monotonic(), deadline)
        self._report_queue()
        self._wake.set()

    def _report_queue(self) -> None:
        self._on_queue(self.policy.queued(), self.policy.queued_tokens())

    # -- scheduling -------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            await self._slot_free.acquire()
            try:
                batch, batch_id = await self._next_batch()
            except Exception:  # a bug in a decision must not stop every later request
                log.exception("scheduling failed; retrying")
                self._slot_free.release()
                await asyncio.sleep(0.01)
                continue
            self._handoff.put((batch, batch_id))

    async def _next_batch(self) -> tuple[Batch, int]:
        while True:
            self._wake.clear()
            decision = self.policy.decide(time.monotonic(), self._accepting)
            if decision.dropped is not None:
                self._drop(decision.dropped)
                self._report_queue()
            if decision.entries:
                now = time.monotonic()
                batch_id = self.policy.started(decision.model, decision.entries, now)
                return Batch(model=decision.model, entries=decision.entries, formed_at=now), batch_id
            if decision.entries is None:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=decision.wait_s)
                except TimeoutError:
                    pass

    def _drop(self, dropped: Dropped) -> None:
        for entry in dropped.expired:
            entry.resolve(DeadlineExceededError("deadline passed while queued"))
        if dropped.expired:
            self._on_drop("deadline", len(dropped.expired))
        if dropped.abandoned:
            self._on_drop("abandoned", len(dropped.abandoned))

    # -- the worker threads -----------------------------------------------------------

    def _work(self) -> None:
        if self.idle_workers:
            run_idle()
        while (item := self._handoff.get()) is not None:
            batch, batch_id = item
            stats = None
            try:
                stats = self.backend.run(batch)  # tokenises first: some inputs may be refused
                for entry, error in stats.refused:
                    entry.resolve(error)
                for entry, result in zip(batch.entries, stats.results, strict=True):
                    entry.resolve(result)
                if stats.results:
                    self._on_batch(stats)
            except Exception as exc:  # a failed batch fails its requests, not the service
                log.exception("batch of %d for %s failed", len(batch.entries), batch.model)
                for entry in batch.entries:
                    entry.resolve(InferenceFailedError(f"inference failed: {type(exc).__name__}"))
            finally:
                self._loop.call_soon_threadsafe(self._batch_done, batch_id, stats)
            if self.trimmer is not None:
                self.trimmer.maybe_trim()

    def _batch_done(self, batch_id: int, stats: BatchStats | None) -> None:
        if stats is None:  # failed: nothing to learn from
            self.policy.finished(batch_id)
        else:
            self.policy.finished(batch_id, stats.num_tokens,
                                 stats.tokenize_seconds + stats.seconds,
                                 (stats.texts, stats.text_chars, stats.text_tokens))
        self._slot_free.release()
        self._wake.set()
