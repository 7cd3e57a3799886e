"""``overload``: many clients, several times the capacity: accepted requests stay fast, the
rest are refused at once. A light probe (one request every 50 ms, a process of its own)
runs beside the crowd: its latencies are those of one client that is not itself
overloaded.

    python -m loadtest overload --clients 200 --duration 30 --per-request 1 --out reports/overload
"""

from __future__ import annotations

import argparse
from pathlib import Path

from loadtest.reports import overload_report
from loadtest.results import pct, summarize
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.scrape import engine_figures, scrape
from loadtest.traffic import Probe, Run, bodies_for, drive, texts_of

OPENING_S = 1.0  # the first second: every client opens its connection and sends at once


def overload(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset, 80, 120)  # about 100 words each
    with start_service(args, out) as server:
        bodies = bodies_for(texts, args.per_request)
        drive(server.url, bodies[:8], min(8, args.clients), 3)  # warm, untimed
        before = scrape(server.url)
        with Probe(server.url, bodies[0], args.duration) as probe:
            run = drive(server.url, bodies, args.clients, args.duration, pid=server.pid,
                        rss_every_s=5)
        engine = engine_figures(before, scrape(server.url))
    later = [o.seconds for o in run.outcomes if o.status == 429 and o.start >= OPENING_S]
    result = {"clients": args.clients, "duration_s": args.duration,
              "texts_per_request": args.per_request, "model": args.model,
              "serve_args": args.serve_args, **summarize(run, args.duration, args.per_request),
              "rss_mib_max": max(r for _, r in run.rss), "engine": engine,
              "refused_after_opening_ms": {"p50": pct(later, 50), "p99": pct(later, 99),
                                           "max": pct(later, 100)},
              "probe": summarize(Run(outcomes=probe.outcomes), args.duration, args.per_request)}
    write(out, result, overload_report(result))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=200, duration=30)
    p.add_argument("--per-request", type=int, default=1, help="texts per request")


def main(args: argparse.Namespace) -> int:
    return finish(overload(args), Path(args.out))
