"""``compare``: the same Locust load against the LTP model(s), their dense parent (in the
same service) and the naive pipeline app, at each concurrency, ``--repeats`` times.

    python -m loadtest compare --dataset amazon-food --ltp-model reviews-minilm-ltp \\
        --dense-model reviews-minilm --concurrency 1,8,32 --duration 30 --out reports/compare

Each repeat runs every cell, the targets one after another at each concurrency (drift hits
them alike); the report gives the ratios with their spread, and ``comparison.png`` charts
the whole comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path

from loadtest.reports import compare_report, plot_comparison
from loadtest.results import LoadResult
from loadtest.scenarios.common import at_least_one
from loadtest.scenarios.load import locust_env, single
from loadtest.server import ltp_serve, pipeline_app
from ltp.core.machine import cpu_name


def compare(args: argparse.Namespace) -> list[LoadResult]:
    """The same load against the LTP model(s), the dense parent, and the naive pipeline app."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ltp_models = args.ltp_model.split(",")
    with ExitStack() as servers:
        service = servers.enter_context(ltp_serve(out / "service.log", args.models_dir,
                                                  [*ltp_models, args.dense_model]))
        naive = servers.enter_context(pipeline_app(out / "naive.log",
                                                   Path(args.models_dir) / args.dense_model))
        targets = [("ltp", service.url, m) for m in ltp_models]
        targets += [("dense", service.url, args.dense_model), ("naive pipeline", naive.url, "")]
        return run_cells(args, targets, out)


def run_cells(args: argparse.Namespace, targets: list[tuple[str, str, str]],
              out: Path) -> list[LoadResult]:
    """Every (target x concurrency) cell ``args.repeats`` times: each repeat runs all the
    cells, the targets one after another at each concurrency, so drift (thermal, the
    background) hits every target alike. Each run has its folder; the report, every run's
    result and the chart are rewritten after each run."""
    results, cpu = [], cpu_name()
    for repeat in range(1, args.repeats + 1):
        for users in [int(u) for u in args.concurrency.split(",")]:
            for name, url, model in targets:
                label = model if name == "ltp" else name  # one folder per LTP model
                folder = out / f"{label.replace(' ', '-')}-u{users}-r{repeat}"
                results.append(single(url, users, max(users / 2, 1), args.duration, folder,
                                      f"{name} ({model or 'pipeline'})",
                                      locust_env(args.dataset, model, args.think), repeat=repeat,
                                      plots=False))
                (out / "report.md").write_text(compare_report(results, args) + "\n")
                (out / "results.json").write_text(json.dumps(
                    [{**asdict(r), "cpu": cpu} for r in results], indent=1))
                plot_comparison(results, out / "comparison.png",
                                f"LTP vs dense vs naive pipeline on {args.dataset}")
    return results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default="models")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--ltp-model", default="reviews-minilm-ltp",
                   help="LTP model(s), comma-separated: each is compared with the dense parent")
    p.add_argument("--dense-model", default="reviews-minilm")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--duration", type=int, default=30)
    p.add_argument("--think", type=float, default=0.0)
    p.add_argument("--repeats", type=at_least_one, default=2,
                   help="runs per cell, interleaved over the targets; the spread over them is "
                   "reported and charted. The comparison takes about repeats x concurrencies x "
                   "targets x duration (default 2: 2 x 3 x 3 x 30 s, about 9 minutes)")
    p.add_argument("--out", required=True)


def main(args: argparse.Namespace) -> int:
    compare(args)
    sys.stdout.write((Path(args.out) / "report.md").read_text())
    return 0
