"""``soak``: steady mixed traffic for a long while, the service's resident memory sampled
every few seconds and plotted.

    python -m loadtest soak --duration 600 --clients 8 --serve-args "--dtype fp32" --out reports/soak/fp32
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from loadtest.reports import plot_rss, soak_report
from loadtest.results import summarize
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.traffic import bodies_for, drive, rss_mib, texts_of


def soak(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    with start_service(args, out) as server:
        bodies = bodies_for(texts, 1, 800) + bodies_for(texts, 4, 200, seed=1)
        start_rss = rss_mib(server.pid)
        run = drive(server.url, bodies, args.clients, args.duration, pid=server.pid,
                    rss_every_s=args.every)
    after_minute = next((r for t, r in run.rss if t >= 60), run.rss[0][1])
    result = {"clients": args.clients, "duration_s": args.duration, "model": args.model,
              "dataset": args.dataset, "serve_args": args.serve_args, "rss_every_s": args.every,
              "rss_mib_at_start": start_rss, "rss_mib_after_first_minute": after_minute,
              "rss_mib_at_end": run.rss[-1][1], "rss_mib_max": max(r for _, r in run.rss),
              "growth_after_first_minute": run.rss[-1][1] / after_minute - 1,
              "trend_growth_after_first_minute": trend_growth(run.rss),
              "rss_samples": run.rss, **summarize(run, args.duration, 1)}
    plot_rss(run, out / "rss.png", f"{args.model} {' '.join(args.serve_args)}")
    write(out, result, soak_report(result))
    return result


def trend_growth(rss: list[tuple[float, float]]) -> float:
    """The rise of a least-squares line through the samples after the first minute, to the
    last sample, over its value at one minute; NaN for fewer than three such samples."""
    later = [(t, r) for t, r in rss if t >= 60]
    if len(later) < 3:
        return float("nan")
    slope, intercept = np.polyfit([t for t, _ in later], [r for _, r in later], 1)
    start = slope * 60 + intercept
    return slope * (later[-1][0] - 60) / start


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=8, duration=600)
    p.add_argument("--every", type=float, default=10.0, help="RSS sampling, seconds")


def main(args: argparse.Namespace) -> int:
    return finish(soak(args), Path(args.out))
