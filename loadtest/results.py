"""What a load run measured: one ``LoadResult`` per run of a cell, and ``Spread``, one figure
over a cell's repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


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
