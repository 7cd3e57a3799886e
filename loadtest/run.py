"""Headless Locust runs against a URL, with a markdown + PNG report.

    python -m loadtest.run single --url http://127.0.0.1:8000 --users 32 --duration 30 --out reports/load
    python -m loadtest.run compare --dataset amazon-food --ltp-model reviews-minilm-ltp \\
        --dense-model reviews-minilm --concurrency 1,8,32 --duration 30 --out reports/compare

``single`` runs one load and writes Locust's CSVs, the service's /metrics before and after,
``report.md`` (requests/s, p50/p95/p99, failures, mean kept tokens, FLOPs saved) and PNG
plots. ``compare`` starts the service (LTP model and its dense parent) and the naive
pipeline app, runs the same load against each at each concurrency, ``--repeats`` times
(round-robin over the targets within each repeat), and reports the ratios with their spread
and one chart, ``comparison.png`` (``loadtest.comparison``).
``overload``, ``soak``, ``drain`` and ``bad-input`` start the service and drive it with raw
asyncio clients (``loadtest.scenarios``): statuses and latency of accepted and refused
requests, resident memory over time, what a SIGTERM under load does, what malformed and
over-limit requests get while good traffic goes on.
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

from loadtest.comparison import compare_report, plot_comparison
from loadtest.processes import free_port, stop, wait_http
from loadtest.results import LoadResult
from loadtest.scrape import kept_histogram, pruning_figures, scrape

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


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
        requests_per_s=answered_per_s(agg), p50_ms=float(agg["50%"]),
        p95_ms=float(agg["95%"]), p99_ms=float(agg["99%"]), repeat=repeat,
        **pruning_figures(before, after))
    if plots:
        plot_run(prefix, kept_histogram(before, after), out, target)
    (out / "report.md").write_text(report([result], f"Load test: {target}") + "\n")
    (out / "result.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def plot_run(prefix: Path, kept: list[tuple[float, float]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(f"{prefix}_stats_history.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    t0 = int(rows[0]["Timestamp"]) if rows else 0
    t = [int(r["Timestamp"]) - t0 for r in rows]

    def column(name: str) -> list[float]:
        return [float(r[name]) if r[name] not in ("N/A", "") else float("nan") for r in rows]

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a.plot(t, column("Requests/s"), label="requests/s")
    a.set_ylabel("requests/s")
    for q in ("50%", "95%", "99%"):
        b.plot(t, column(q), label=f"p{q.rstrip('%')}")
    b.set_ylabel("latency (ms)")
    b.set_xlabel("seconds")
    b.legend()
    a.set_title(title)
    fig.tight_layout()
    fig.savefig(out / "throughput_latency.png", dpi=110)
    plt.close(fig)
    if kept:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        labels = [("inf" if b == float("inf") else f"{b:g}") for b, _ in kept]
        ax.bar(range(len(kept)), [n for _, n in kept], tick_label=labels)
        ax.set_xlabel("kept tokens after the last pruning layer (bucket upper bound)")
        ax.set_ylabel("sequences")
        fig.tight_layout()
        fig.savefig(out / "kept_tokens.png", dpi=110)
        plt.close(fig)


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def report(results: list[LoadResult], title: str) -> str:
    lines = [f"# {title}", "",
             "| target | users | requests | req/s | p50 ms | p95 ms | p99 ms | failures "
             "| mean kept tokens | mean input tokens | FLOPs saved |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.target} | {r.users} | {r.requests} | {r.requests_per_s:.1f} | "
                     f"{r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.p99_ms:.0f} | {r.failures} | "
                     f"{_fmt(r.mean_kept_tokens, '.1f')} | {_fmt(r.mean_input_tokens, '.1f')} | "
                     f"{_fmt(r.flops_saved, '.1%')} |")
    return "\n".join(lines)


def start_server(cmd: list[str], url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=os.environ | env, cwd=REPO, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        wait_http(f"{url}/healthz", 180, proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def compare(args: argparse.Namespace) -> list[LoadResult]:
    """The same load against the LTP model(s), the dense parent, and the naive pipeline app."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models_dir = Path(args.models_dir)
    service_port, naive_port = free_port(), free_port()
    service_url, naive_url = f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{naive_port}"
    servers = []
    try:
        ltp_models = args.ltp_model.split(",")
        servers.append(start_server(
            [sys.executable, "-m", "app.cli", "serve", "--models-dir", str(models_dir),
             "--host", "127.0.0.1", "--port", str(service_port)], service_url,
            {"LTP_MODELS": json.dumps([*ltp_models, args.dense_model]),
             "LTP_DEFAULT_MODEL": ltp_models[0]}, out / "service.log"))
        servers.append(start_server(
            [sys.executable, "-m", "uvicorn", "loadtest.baselines.pipeline_app:app",
             "--host", "127.0.0.1", "--port", str(naive_port), "--log-level", "warning"],
            naive_url, {"LTP_BASELINE_MODEL": str(models_dir / args.dense_model)},
            out / "naive.log"))
        targets = [("ltp", service_url, m) for m in ltp_models]
        targets += [("dense", service_url, args.dense_model), ("naive pipeline", naive_url, "")]
        return run_cells(args, targets, out)
    finally:
        for proc in servers:
            stop(proc, timeout_s=60)


def run_cells(args: argparse.Namespace, targets: list[tuple[str, str, str]],
              out: Path) -> list[LoadResult]:
    """Every (target x concurrency) cell ``args.repeats`` times: each repeat runs all the
    cells, the targets one after another at each concurrency, so drift (thermal, the
    background) hits every target alike. Each run has its folder; the report, every run's
    result and the chart are rewritten after each run."""
    results = []
    for repeat in range(1, args.repeats + 1):
        for users in [int(u) for u in args.concurrency.split(",")]:
            for name, url, model in targets:
                env = {"LTP_LOAD_DATASET": args.dataset, "LTP_LOAD_MODEL": model,
                       "LTP_LOAD_THINK_S": str(args.think)}
                label = model if name == "ltp" else name  # one folder per LTP model
                folder = out / f"{label.replace(' ', '-')}-u{users}-r{repeat}"
                results.append(single(url, users, max(users / 2, 1), args.duration, folder,
                                      f"{name} ({model or 'pipeline'})", env, repeat=repeat,
                                      plots=False))
                (out / "report.md").write_text(compare_report(results, args) + "\n")
                (out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
                plot_comparison(results, out / "comparison.png",
                                f"LTP vs dense vs naive pipeline on {args.dataset}")
    return results


def _scenario_parsers(sub) -> None:
    defaults = {"overload": (200, 30), "soak": (8, 600), "drain": (32, 0), "bad-input": (8, 20)}
    for name, helptext in (("overload", "many clients over capacity: refusals and latency"),
                           ("soak", "steady mixed traffic, resident memory over time"),
                           ("drain", "SIGTERM under load: what is answered, what is refused"),
                           ("bad-input", "malformed and over-limit requests beside good "
                                         "traffic: their 4xx, no good request lost")):
        clients, duration = defaults[name]
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--models-dir", default="models")
        s.add_argument("--model", default="sentiment-minilm-ltp")
        s.add_argument("--dataset", default="amazon-food", help="texts to send (test split)")
        s.add_argument("--clients", type=int, default=clients)
        s.add_argument("--out", required=True)
        s.add_argument("--serve-args", default="", type=lambda v: v.split(),
                       help="extra `ltp serve` flags, e.g. '--dtype bf16'")
        s.add_argument("--server-dir", default=None,
                       help="checkout to run the service from (before/after comparisons)")
        if name in ("overload", "bad-input"):
            s.add_argument("--duration", type=int, default=duration)
        if name == "overload":
            s.add_argument("--per-request", type=int, default=1, help="texts per request")
        if name == "soak":
            s.add_argument("--duration", type=int, default=duration)
            s.add_argument("--every", type=float, default=10.0, help="RSS sampling, seconds")
        if name == "drain":
            s.add_argument("--after", type=float, default=5.0, help="SIGTERM after, seconds")


def _at_least_one(value: str) -> int:
    if int(value) < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return int(value)


def _served_parser(sub) -> None:
    s = sub.add_parser("served", help="served throughput against the offline forward; with "
                       "--grid, a sweep over service settings")
    s.add_argument("--models-dir", default="models")
    s.add_argument("--models", default="reviews-minilm-ltp,reviews-minilm",
                   help="comma-separated; with two, LTP first and its dense parent second")
    s.add_argument("--dataset", default="amazon-food")
    s.add_argument("--dtypes", default="fp32", help="comma-separated: fp32,bf16")
    s.add_argument("--clients", type=int, default=32)
    s.add_argument("--duration", type=int, default=20)
    s.add_argument("--grid", default="", help="';'-separated sets of `ltp serve` flags, e.g. "
                   "'--max-padding-ratio 0.3;--max-padding-ratio 1.0'")
    s.add_argument("--server-dir", default=None,
                   help="checkout to run the service from (before/after comparisons)")
    s.add_argument("--repeats", type=_at_least_one, default=1,
                   help="rounds over all the cells, the spread over them reported; each cell "
                   "starts its own service, so a round takes cells x (start-up + 3 s + duration)")
    s.add_argument("--out", required=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("single", help="one load against a running service")
    s.add_argument("--url", required=True)
    s.add_argument("--users", type=int, default=8)
    s.add_argument("--spawn-rate", type=float, default=4)
    s.add_argument("--duration", type=int, default=30, help="seconds")
    s.add_argument("--dataset", default="amazon-food")
    s.add_argument("--model", default="")
    s.add_argument("--think", type=float, default=0.0)
    s.add_argument("--out", required=True)
    c = sub.add_parser("compare", help="LTP vs dense parent vs naive pipeline app")
    c.add_argument("--models-dir", default="models")
    c.add_argument("--dataset", default="amazon-food")
    c.add_argument("--ltp-model", default="reviews-minilm-ltp",
                   help="LTP model(s), comma-separated: each is compared with the dense parent")
    c.add_argument("--dense-model", default="reviews-minilm")
    c.add_argument("--concurrency", default="1,8,32")
    c.add_argument("--duration", type=int, default=30)
    c.add_argument("--think", type=float, default=0.0)
    c.add_argument("--repeats", type=_at_least_one, default=2,
                   help="runs per cell, interleaved over the targets; the spread over them is "
                   "reported and charted. The comparison takes about repeats x concurrencies x "
                   "targets x duration (default 2: 2 x 3 x 3 x 30 s, about 9 minutes)")
    c.add_argument("--out", required=True)
    _scenario_parsers(sub)
    _served_parser(sub)
    args = p.parse_args()
    if args.command in ("overload", "soak", "drain", "served", "bad-input"):
        from loadtest import scenarios

        result = getattr(scenarios, args.command.replace("-", "_"))(args)
        sys.stdout.write((Path(args.out) / "report.md").read_text())
        return 1 if result.get("server_errors") or result.get("unexpected") else 0
    if args.command == "single":
        env = {"LTP_LOAD_DATASET": args.dataset, "LTP_LOAD_MODEL": args.model,
               "LTP_LOAD_THINK_S": str(args.think)}
        result = single(args.url, args.users, args.spawn_rate, args.duration, Path(args.out),
                        args.url, env)
        sys.stdout.write(json.dumps(asdict(result), indent=2) + "\n")
    else:
        compare(args)
        sys.stdout.write((Path(args.out) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
