"""A rolling restart of one api replica behind nginx during a bounded closed-loop load test.

    python deploy/podman/rolling_restart.py --url http://127.0.0.1:8080 \\
        --replica ltpscale_api-replica_1 --out reports/deploy

The replica is stopped (SIGTERM, it drains) and started again mid-run; every request must be
answered (200, or 429 when the others refuse load); the statuses before, during and after go
into OUT/rolling-restart.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from loadtest.processes import wait_http  # noqa: E402
from loadtest.traffic import bodies_for, drive, texts_of  # noqa: E402
from ltp.core.machine import cpu_name  # noqa: E402
from tests.deploy.container import podman  # noqa: E402


def healthy(name: str, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if podman("healthcheck", "run", name, check=False).returncode == 0:
            return time.monotonic() - start
        time.sleep(0.5)
    raise TimeoutError(name)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--replica", required=True)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--restart-after", type=float, default=10.0)
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--out", default="reports/deploy")
    p.add_argument("--replicas", type=int, default=3, help="replicas of the service behind nginx")
    p.add_argument("--ready-timeout", type=float, default=300.0)
    args = p.parse_args()
    # every replica ready (they load their models side by side) and nginx answering, before
    # any load: the run measures the restart, not the start-up
    prefix = args.replica.rsplit("_", 1)[0]
    for i in range(1, args.replicas + 1):
        healthy(f"{prefix}_{i}", args.ready_timeout)
    wait_http(f"{args.url}/readyz", args.ready_timeout)
    events: dict[str, float] = {}
    t0 = time.monotonic()

    def restart() -> None:
        time.sleep(args.restart_after)
        events["stop_s"] = time.monotonic() - t0
        podman("stop", "--time", "30", args.replica)
        events["stopped_s"] = time.monotonic() - t0
        podman("start", args.replica)
        events["ready_after_start_s"] = healthy(args.replica, 120)
        events["ready_s"] = time.monotonic() - t0

    bodies = bodies_for(texts_of(args.dataset), 1)
    restarter = threading.Thread(target=restart)
    restarter.start()
    run = drive(args.url, bodies, args.clients, args.duration)
    restarter.join()
    phases = {"before": (0, events["stop_s"]), "during": (events["stop_s"], events["ready_s"]),
              "after": (events["ready_s"], args.duration)}
    result = {
        "cpu": cpu_name(), "clients": args.clients, "duration_s": args.duration,
        "replicas": args.replicas, "restarted": args.replica, "events_s": events,
        "requests": len(run.outcomes),
        "statuses": dict(Counter(str(o.status) for o in run.outcomes)),
        "by_phase": {name: dict(Counter(str(o.status) for o in run.outcomes if lo <= o.start < hi))
                     for name, (lo, hi) in phases.items()},
        "lost": sum(o.status not in (200, 429) for o in run.outcomes),
        "p50_ms": _quantile([o.seconds for o in run.outcomes if o.status == 200], 0.5) * 1e3,
        "p99_ms": _quantile([o.seconds for o in run.outcomes if o.status == 200], 0.99) * 1e3,
        "throughput_rps": sum(o.status == 200 for o in run.outcomes) / args.duration,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rolling-restart.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0 if result["lost"] == 0 else 1


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
