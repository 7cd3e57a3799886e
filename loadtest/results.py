"""What a load run measured: one ``LoadResult`` per Locust run of a cell, ``Spread`` (one
figure over a cell's repeated runs), the cells of a comparison and their ratios within each
repeat, and ``summarize`` of a raw-client ``Run``. Pure functions, no server."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from loadtest.traffic import Run


@dataclass(frozen=True)
class Spread:
    """One figure over the repeats of a cell: every value, their mean and their range."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, runs: Iterable[LoadResult], field: str) -> Spread:
        return cls(tuple(getattr(r, field) for r in runs))

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def range_text(self, spec: str) -> str:
        """'1.50' for one value, else the mean and the range: '1.50 (1.40–1.60)'."""
        text = format(self.mean, spec)
        if len(self.values) > 1:
            text += f" ({self.low:{spec}}–{self.high:{spec}})"
        return text

    def text(self, spec: str) -> str:
        """Mean and range for two values; mean ± standard deviation from three on."""
        if len(self.values) < 3:
            return self.range_text(spec)
        return f"{self.mean:{spec}} ± {statistics.stdev(self.values):{spec}}"


@dataclass
class LoadResult:
    target: str
    users: int
    duration_s: float
    requests: int
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_kept_tokens: float | None = None
    mean_input_tokens: float | None = None
    flops_saved: float | None = None
    repeat: int = 1  # which of a comparison's repeated runs, from 1


Cells = dict[tuple[int, str], list[LoadResult]]  # (users, target) -> its runs, in repeat order


def cells(results: list[LoadResult]) -> Cells:
    """The runs of each (users, target), by users and then in the order targets were run."""
    order = {t: i for i, t in enumerate(dict.fromkeys(r.target for r in results))}
    grouped: Cells = {}
    for r in sorted(results, key=lambda r: (r.users, order[r.target], r.repeat)):
        grouped.setdefault((r.users, r.target), []).append(r)
    return grouped


def ratio(results: list[LoadResult], users: int, num: str, den: str, field: str) -> Spread | None:
    """``field`` of target ``num`` over that of ``den``, within each repeat that ran both, so
    drift between repeats cancels; None where no repeat has both (or a zero)."""
    top = {r.repeat: getattr(r, field) for r in results if r.users == users and r.target == num}
    bottom = {r.repeat: getattr(r, field) for r in results if r.users == users and r.target == den}
    values = tuple(a / bottom[k] for k, a in top.items() if a and bottom.get(k))
    return Spread(values) if values else None


def mean_of(runs: list[LoadResult], field: str) -> float | None:
    """The mean of ``field`` over the runs that have it."""
    values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
    return statistics.fmean(values) if values else None


def pct(seconds, q: float) -> float | None:
    """The ``q``-th percentile of ``seconds``, in milliseconds; None for no values."""
    return float(np.percentile(seconds, q)) * 1e3 if len(seconds) else None


def summarize(run: Run, duration_s: float, per_request: int) -> dict:
    """A raw-client run's counts by status, latency of accepted and refused requests,
    throughput."""
    statuses: dict[str, int] = {}
    for o in run.outcomes:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
    ok = [o.seconds for o in run.outcomes if o.status == 200]
    refused = [o.seconds for o in run.outcomes if o.status == 429]
    return {
        "requests": len(run.outcomes), "statuses": dict(sorted(statuses.items())),
        "accepted_per_s": len(ok) / duration_s, "sequences_per_s": len(ok) * per_request / duration_s,
        "accepted_ms": {"p50": pct(ok, 50), "p95": pct(ok, 95), "p99": pct(ok, 99),
                        "max": pct(ok, 100)},
        "refused_ms": {"p50": pct(refused, 50), "p99": pct(refused, 99), "max": pct(refused, 100)},
        "server_errors": sum(n for s, n in statuses.items() if s.startswith("5")),
        "no_answer": statuses.get("0", 0),
    }
