"""Traffic against a real server, one scenario a command:

    python -m loadtest single --url http://127.0.0.1:8000 --users 32 --duration 30 --out reports/load
    python -m loadtest compare --dataset amazon-food --ltp-model reviews-minilm-ltp \\
        --dense-model reviews-minilm --concurrency 1,8,32 --duration 30 --out reports/compare
    python -m loadtest overload --clients 200 --duration 30 --out reports/overload

``single`` and ``compare`` drive the service with Locust (``loadtest/locustfile.py``); the
others start `ltp serve` themselves and drive it with raw asyncio clients
(``loadtest.traffic``). Every scenario writes ``report.md`` (and its figures) under ``--out``
and prints the report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple

from loadtest.scenarios import (
    bad_input,
    burst,
    compare,
    drain,
    load,
    overhead,
    overload,
    profile,
    served,
    soak,
)


class Scenario(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


SCENARIOS: dict[str, Scenario] = {
    "single": Scenario("one Locust load against a running service", load.add_arguments, load.main),
    "compare": Scenario("LTP vs dense parent vs naive pipeline app", compare.add_arguments,
                        compare.main),
    "overload": Scenario("many clients over capacity: refusals and latency",
                         overload.add_arguments, overload.main),
    "burst": Scenario("every client connects and sends at once, round after round: refusals "
                      "against a bare ASGI app's", burst.add_arguments, burst.main),
    "soak": Scenario("steady mixed traffic, resident memory over time", soak.add_arguments,
                     soak.main),
    "drain": Scenario("SIGTERM under load: what is answered, what is refused",
                      drain.add_arguments, drain.main),
    "bad-input": Scenario("malformed and over-limit requests beside good traffic: their 4xx, "
                          "no good request lost", bad_input.add_arguments, bad_input.main),
    "served": Scenario("served throughput against the offline forward; with --grid, a sweep "
                       "over service settings", served.add_arguments, served.main),
    "overhead": Scenario("one request at a time: the service's time over the model's, and "
                         "resident memory", overhead.add_arguments, overhead.main),
    "profile": Scenario("py-spy of the service under load: samples per thread, top frames",
                        profile.add_arguments, profile.main),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, scenario in SCENARIOS.items():
        scenario.add_arguments(sub.add_parser(name, help=scenario.help))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return SCENARIOS[args.command].main(args)


if __name__ == "__main__":
    sys.exit(main())
