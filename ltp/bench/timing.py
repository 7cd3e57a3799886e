"""Timing alternatives against each other in one process: each warmed once, then timed round
after round, the alternatives taking turns within a round so drift (clock boost, heat, the
other jobs on the machine) hits all of them alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


def timed(run: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    """Wall seconds of one call of ``run``; ``sync`` (a device's synchronise) is called
    before and after, so the time covers work queued on an accelerator."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    run()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def alternate(runs: Mapping[str, Callable[[], object]], rounds: int, *,
              warmup: Mapping[str, Callable[[], object]] | None = None,
              sync: Callable[[], None] | None = None,
              after_run: Callable[[], object] | None = None,
              after_round: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Seconds of each run in each of ``rounds`` rounds, by name, in round order.

    ``warmup``: what to call once per run before timing (default: the runs themselves).
    ``after_run`` is called after each timed run, ``after_round`` after the warm-up and after
    each round, both outside the timed calls (a progress bar's step)."""
    for run in (warmup or runs).values():
        run()
    if after_round is not None:
        after_round()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(timed(run, sync))
            if after_run is not None:
                after_run()
        if after_round is not None:
            after_round()
    return times
