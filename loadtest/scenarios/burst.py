"""``burst``: every client opens its connection and sends one request at the same moment,
round after round with the service idle in between: the overload run's opening second,
repeated so that its tail is a statistic rather than one draw.

The same bursts then go to two servers that refuse everything, at the same priority: a bare
ASGI app (``loadtest.baselines.refuse_app``) on the service's server (uvicorn), the floor of
an answer from Python on this machine; and nginx (``loadtest/baselines/refuse_nginx.conf``,
where installed), the floor of any answer: what is left there is the clients' own cost on
the same cores. The service's refusals over the first floor are what its own layers cost in
a burst; the second floor is what no server can take off.

    python -m loadtest burst --model reviews-minilm-ltp --clients 200 --rounds 20 --out reports/burst
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from loadtest.reports import burst_report
from loadtest.results import pct
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.server import baseline_app, nginx_refusal, run_below_clients
from loadtest.traffic import Outcome, bodies_for, bursts, drive, texts_of
from ltp.core.machine import cpu_name

FLOOR = "bare ASGI refusal"
NGINX_FLOOR = "nginx refusal"


def summarize_bursts(rounds: list[list[Outcome]]) -> dict:
    """Per burst: its answers by kind; over the bursts: the refusals' latency pooled, and
    each burst's own p99 (median and range)."""
    refusals = [[o.seconds for o in r if o.status == 429] for r in rounds]
    pooled = [s for r in refusals for s in r]
    per_round = [pct(r, 99) for r in refusals if r]
    statuses = [[o.status for o in r] for r in rounds]
    return {
        "rounds": len(rounds),
        "accepted_per_round": statistics.median(s.count(200) for s in statuses),
        "refused_per_round": statistics.median(len(r) for r in refusals),
        "refused_ms": {"p50": pct(pooled, 50), "p99": pct(pooled, 99), "max": pct(pooled, 100)},
        "round_p99_ms": ({"median": statistics.median(per_round), "min": min(per_round),
                          "max": max(per_round)} if per_round else None),
        "server_errors": sum(1 for s in statuses for x in s if x >= 500),
        "no_answer": sum(s.count(0) for s in statuses),
    }


def burst(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bodies = bodies_for(texts_of(args.dataset, 80, 120), 1)  # the overload run's texts
    targets = {}
    with start_service(args, out) as server:
        drive(server.url, bodies[:8], min(8, args.clients), 3)  # warm, untimed
        targets["service"] = summarize_bursts(bursts(server.url, bodies, args.clients,
                                                     args.rounds, args.pause))

    def baseline(server) -> dict:  # a baseline's bursts, below the clients as the service was
        with server:
            run_below_clients(server)
            return summarize_bursts(bursts(server.url, bodies, args.clients, args.rounds,
                                           args.pause))

    with tempfile.TemporaryDirectory() as work:  # the baselines' logs, nginx's files
        targets[FLOOR] = baseline(baseline_app(Path(work) / "floor.log", "refuse_app"))
        nginx = nginx_refusal(Path(work) / "nginx")
        if nginx is not None:
            targets[NGINX_FLOOR] = baseline(nginx)
    service = targets["service"]
    result = {"clients": args.clients, "rounds": args.rounds, "model": args.model, "cpu": cpu_name(),
              "serve_args": args.serve_args, "targets": targets,
              "server_errors": service["server_errors"], "no_answer": service["no_answer"]}
    write(out, result, burst_report(result))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=200)
    p.add_argument("--rounds", type=int, default=20, help="bursts against each target")
    p.add_argument("--pause", type=float, default=1.0,
                   help="seconds between a burst's last answer and the next burst")


def main(args: argparse.Namespace) -> int:
    return finish(burst(args), Path(args.out))
