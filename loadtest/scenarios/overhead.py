"""``overhead``: what the service adds to one request on an idle service, over the model's
own batch time (``X-Inference-Ms``), and its resident memory idle and after a load.

    python -m loadtest overhead --model sentiment-minilm-ltp --dataset rt-polarity --out reports/overhead

Requests go one at a time (``--requests`` of them), then ``--clients`` closed-loop clients
load the service for ``--duration`` seconds; throughput against the offline forward is
``served``'s figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import httpx

from loadtest.reports import overhead_report
from loadtest.results import summarize
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.traffic import bodies_for, drive, rss_mib, texts_of
from ltp.core.machine import cpu_name


def one_at_a_time(url: str, texts: list[str], model: str) -> dict:
    """Each text alone: the client's time, and its time minus the model's batch time."""
    totals, overheads = [], []
    with httpx.Client(base_url=url, timeout=30) as client:
        for text in texts:
            start = time.perf_counter()
            r = client.post("/classify", json={"inputs": text, "model": model})
            total = (time.perf_counter() - start) * 1e3
            r.raise_for_status()
            totals.append(total)
            overheads.append(total - float(r.headers["x-inference-ms"]))
    return {"idle_total_ms_p50": statistics.median(totals),
            "idle_overhead_ms_p50": statistics.median(overheads),
            "idle_overhead_ms_p90": statistics.quantiles(overheads, n=10)[-1]}


def overhead(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    with start_service(args, out) as server:
        rss_idle = rss_mib(server.pid)
        idle = one_at_a_time(server.url, texts[: args.requests], args.model)
        run = drive(server.url, bodies_for(texts, 1, model=args.model), args.clients, args.duration)
        rss_loaded = rss_mib(server.pid)
    load = summarize(run, args.duration, 1)
    result = {"model": args.model, "dataset": args.dataset, "serve_args": args.serve_args,
              "requests_one_at_a_time": len(texts[: args.requests]), **idle,
              "rss_mib_idle": rss_idle, "rss_mib_after_load": rss_loaded,
              "load": {"clients": args.clients, "duration_s": args.duration,
                       "statuses": load["statuses"], "accepted_per_s": load["accepted_per_s"]},
              "server_errors": load["server_errors"], "cpu": cpu_name(),
              "cores": len(os.sched_getaffinity(0))}
    write(out, result, overhead_report(result))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=64, duration=15)
    p.add_argument("--requests", type=int, default=100, help="sent one at a time")


def main(args: argparse.Namespace) -> int:
    return finish(overhead(args), Path(args.out))
