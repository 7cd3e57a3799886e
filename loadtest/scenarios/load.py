"""``single``: one headless Locust run against a running service.

    python -m loadtest single --url http://127.0.0.1:8000 --users 32 --duration 30 --out reports/load

Writes Locust's CSVs, the service's /metrics before and after, ``report.md`` (requests/s,
p50/p95/p99, failures, mean kept tokens, FLOPs saved), ``result.json`` and PNG plots.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from loadtest.reports import load_report, plot_run
from loadtest.results import LoadResult
from loadtest.scrape import kept_histogram, pruning_figures, scrape
from loadtest.server import REPO

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"


def run_locust(url: str, users: int, spawn_rate: float, duration_s: int, prefix: Path,
               env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
           "-u", str(users), "-r", str(spawn_rate), "-t", f"{duration_s}s", "--csv", str(prefix),
           "--csv-full-history", "--only-summary", "--stop-timeout", "10", "--exit-code-on-error", "0"]
    subprocess.run(cmd, env=os.environ | env, cwd=REPO, check=True, timeout=duration_s + 120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_stats(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv") as f:
        rows = list(csv.DictReader(f))
    return next(r for r in rows if r["Name"] == "Aggregated")


def answered_per_s(agg: dict) -> float:
    """Answered (non-failed) requests a second: refusals (429) are fast and would otherwise
    count as throughput."""
    count = int(agg["Request Count"])
    return float(agg["Requests/s"]) * (count - int(agg["Failure Count"])) / count if count else 0.0


def _ms(value: str) -> float:
    """A latency of Locust's CSV; NaN where no request completed ("N/A")."""
    return float("nan") if value in ("N/A", "") else float(value)


def locust_env(dataset: str, model: str, think_s: float) -> dict[str, str]:
    """The locustfile's settings."""
    return {"LTP_LOAD_DATASET": dataset, "LTP_LOAD_MODEL": model, "LTP_LOAD_THINK_S": str(think_s)}


def single(url: str, users: int, spawn_rate: float, duration_s: int, out: Path, target: str,
           env: dict[str, str], *, repeat: int = 1, plots: bool = True) -> LoadResult:
    """One headless run; CSVs, metrics snapshots, a report and (with ``plots``) PNG plots of
    this run under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    before = scrape(url)
    prefix = out / "locust"
    run_locust(url, users, spawn_rate, duration_s, prefix, env)
    after = scrape(url)
    for name, snapshot in (("metrics_before.json", before), ("metrics_after.json", after)):
        (out / name).write_text(json.dumps(snapshot or {}, indent=1))
    agg = read_stats(prefix)
    result = LoadResult(
        target=target, users=users, duration_s=duration_s,
        requests=int(agg["Request Count"]), failures=int(agg["Failure Count"]),
        requests_per_s=answered_per_s(agg), p50_ms=_ms(agg["50%"]),
        p95_ms=_ms(agg["95%"]), p99_ms=_ms(agg["99%"]), repeat=repeat,
        **pruning_figures(before, after))
    if plots:
        plot_run(Path(f"{prefix}_stats_history.csv"), kept_histogram(before, after), out, target)
    (out / "report.md").write_text(load_report([result], f"Load test: {target}") + "\n")
    (out / "result.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True)
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--spawn-rate", type=float, default=4)
    p.add_argument("--duration", type=int, default=30, help="seconds")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--model", default="")
    p.add_argument("--think", type=float, default=0.0)
    p.add_argument("--out", required=True)


def main(args: argparse.Namespace) -> int:
    result = single(args.url, args.users, args.spawn_rate, args.duration, Path(args.out),
                    args.url, locust_env(args.dataset, args.model, args.think))
    sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
    return 0
