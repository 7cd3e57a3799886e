"""``drain``: SIGTERM under load: what was accepted is answered, then the process exits.

    python -m loadtest drain --clients 32 --out reports/drain
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from loadtest.reports import drain_report
from loadtest.results import summarize
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.traffic import Run, bodies_for, drive, texts_of


def drain(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bodies = bodies_for(texts_of(args.dataset), 1)
    with start_service(args, out) as server:

        def terminate() -> None:
            time.sleep(args.after)
            server.proc.send_signal(signal.SIGTERM)

        killer = threading.Thread(target=terminate)
        killer.start()
        run = drive(server.url, bodies, args.clients, args.after + 5)
        killer.join()
        code = server.proc.wait(timeout=60)
    before = [o for o in run.outcomes if o.start + o.seconds <= args.after]
    after = [o for o in run.outcomes if o.start + o.seconds > args.after]
    result = {"clients": args.clients, "sigterm_after_s": args.after, "exit_code": code,
              "answered_before_sigterm": summarize(Run(before), args.after, 1)["statuses"],
              "after_sigterm": summarize(Run(after), 5, 1)["statuses"]}
    write(out, result, drain_report(result))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=32)
    p.add_argument("--after", type=float, default=5.0, help="SIGTERM after, seconds")


def main(args: argparse.Namespace) -> int:
    return finish(drain(args), Path(args.out))
