"""A queue of tokenised sequences, bucketed by length, that forms padded-budget batches.

No torch, no HTTP: entries are plain objects with a length, an arrival time, a deadline and
a way to tell whether their client is still waiting. The policy:

* the oldest live entry always rides in the next batch (no starvation);
* the rest of the batch is filled with the entries closest in length to it (nearest
  bucket first, oldest first within a bucket), while ``batch size x longest`` stays
  within ``max_batch_tokens``, the count within ``max_batch_size`` and the padding within
  ``max_padding_ratio`` of the padded tokens;
* expired entries and entries whose client has gone are removed without being computed.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.settings import LARGE_BATCH


class Queueable(Protocol):
    num_tokens: int
    enqueued_at: float
    deadline: float

    def abandoned(self) -> bool: ...


@dataclass(frozen=True)
class QueueLimits:
    """The batching limits, read from ``Settings`` (where each is defined and explained)."""

    max_batch_size: int
    max_batch_tokens: int
    max_sequences: int
    max_padding_ratio: float
    bucket_width: int
    max_queue_wait_s: float
    max_wait_s: float
    max_batch_s: float

    @classmethod
    def from_settings(cls, settings, max_batch_size: int | None = None) -> QueueLimits:
        """``max_batch_size``: the auto value resolved for the loaded models
        (``app.loading.batch_size``) where the setting says 0."""
        return cls(max_batch_size=settings.max_batch_size or max_batch_size or LARGE_BATCH,
                   max_batch_tokens=settings.max_batch_tokens,
                   max_sequences=settings.max_queue_sequences,
                   max_padding_ratio=settings.max_padding_ratio,
                   bucket_width=settings.bucket_width,
                   max_queue_wait_s=settings.max_queue_wait_ms / 1e3,
                   max_wait_s=settings.max_wait_ms / 1e3,
                   max_batch_s=settings.max_batch_ms / 1e3)


@dataclass
class Dropped:
    """Entries removed without being computed, by reason."""

    expired: list = field(default_factory=list)
    abandoned: list = field(default_factory=list)


class BucketQueue:
    """Entries by length bucket; each bucket keeps arrival order."""

    def __init__(self, limits: QueueLimits) -> None:
        self.limits = limits
        self._buckets: dict[int, OrderedDict[int, Queueable]] = {}
        self._arrival: OrderedDict[int, Queueable] = OrderedDict()  # all entries, oldest first
        self._ids = itertools.count()
        self.num_tokens = 0

    def __len__(self) -> int:
        return len(self._arrival)

    def put(self, entry: Queueable) -> None:
        key = next(self._ids)
        bucket = entry.num_tokens // self.limits.bucket_width
        self._buckets.setdefault(bucket, OrderedDict())[key] = entry
        self._arrival[key] = entry
        self.num_tokens += entry.num_tokens

    def _remove(self, key: int) -> Queueable:
        entry = self._arrival.pop(key)
        bucket = entry.num_tokens // self.limits.bucket_width
        del self._buckets[bucket][key]
        if not self._buckets[bucket]:
            del self._buckets[bucket]
        self.num_tokens -= entry.num_tokens
        return entry

    def purge(self, now: float) -> Dropped:
        """Remove entries past their deadline or whose client has gone."""
        dropped = Dropped()
        for key, entry in list(self._arrival.items()):
            if entry.abandoned():
                dropped.abandoned.append(self._remove(key))
            elif entry.deadline <= now:
                dropped.expired.append(self._remove(key))
        return dropped

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest entry has waited (0 when empty)."""
        if not self._arrival:
            return 0.0
        return now - next(iter(self._arrival.values())).enqueued_at

    def next_batch(self, now: float, max_tokens: int | None = None,
                   ) -> tuple[list[Queueable], Dropped]:
        """Purge, then take the oldest entry and the entries nearest to it in length, within
        ``max_tokens`` real tokens when given (the policy's cap on a batch's compute time)."""
        dropped = self.purge(now)
        if not self._arrival:
            return [], dropped
        anchor_key, anchor = next(iter(self._arrival.items()))
        chosen = {anchor_key: anchor}
        longest, real = anchor.num_tokens, anchor.num_tokens
        for key, entry in self._candidates(anchor.num_tokens // self.limits.bucket_width):
            if len(chosen) >= self.limits.max_batch_size:
                break
            if key in chosen:
                continue
            width = max(longest, entry.num_tokens)
            padded = width * (len(chosen) + 1)
            if padded > self.limits.max_batch_tokens:
                continue
            if 1 - (real + entry.num_tokens) / padded > self.limits.max_padding_ratio:
                continue
            if max_tokens is not None and real + entry.num_tokens > max_tokens:
                continue
            chosen[key] = entry
            longest, real = width, real + entry.num_tokens
        return [self._remove(key) for key in chosen], dropped

    def _candidates(self, home: int):
        """Entries bucket by bucket, nearest bucket to ``home`` first, oldest first in each."""
        order: Callable[[int], tuple[int, int]] = lambda b: (abs(b - home), b)  # noqa: E731
        for bucket in sorted(self._buckets, key=order):
            yield from list(self._buckets[bucket].items())
