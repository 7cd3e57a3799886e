"""The locustfile and the ``single`` scenario, end to end against a real server with a tiny
model."""

import csv
import json

from loadtest.reports import plot_run
from loadtest.scenarios.load import answered_per_s, single
from loadtest.scrape import delta, kept_histogram


def test_single_run_writes_csvs_metrics_plots_and_report(server, tiny_csv, tmp_path):
    out = tmp_path / "load"
    env = {"LTP_LOAD_DATASET": str(tiny_csv), "LTP_LOAD_MODEL": "tiny-ltp",
           "LTP_LOAD_THINK_S": "0.01"}
    result = single(server.url, users=4, spawn_rate=4, duration_s=4, out=out,
                    target="tiny-ltp", env=env)
    assert result.requests > 20 and result.failures == 0
    assert result.requests_per_s > 0 and result.p50_ms <= result.p99_ms
    assert result.mean_kept_tokens is not None and result.mean_kept_tokens >= 1
    assert 0 < result.flops_saved < 1
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv",
                 "metrics_before.json", "metrics_after.json", "throughput_latency.png",
                 "kept_tokens.png", "report.md", "result.json"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| tiny-ltp"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert all(c and c != "-" for c in cells), row
    assert json.loads((out / "result.json").read_text())["requests"] == result.requests
    assert cells[:3] == ["tiny-ltp", "4", str(result.requests)]
    assert cells[3] == f"{result.requests_per_s:.1f}" and cells[6] == f"{result.p99_ms:.0f}"
    # the run lasted its --run-time (Locust's clock starts when it is set, not before)
    with open(out / "locust_stats_history.csv") as f:
        history = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    assert int(history[-1]["Timestamp"]) - int(history[0]["Timestamp"]) >= 3
    # the plots draw the run: the history's points, and every sequence the service saw
    metrics = [json.loads((out / f"metrics_{w}.json").read_text()) for w in ("before", "after")]
    figures = plot_run(out / "locust_stats_history.csv", kept_histogram(*metrics), tmp_path, "again")
    throughput = figures["throughput_latency.png"].axes[0].lines[0].get_ydata()
    assert list(throughput) == [float(r["Requests/s"]) for r in history]
    assert [line.get_label() for line in figures["throughput_latency.png"].axes[1].lines] == [
        "p50", "p95", "p99"]
    sequences = delta(*metrics, "ltp_kept_tokens_count")
    bars = figures["kept_tokens.png"].axes[0].patches
    assert sum(b.get_height() for b in bars) == sequences >= result.requests


def test_throughput_counts_answered_requests_only():
    # 1,000 requests in the run, 900 of them fast refusals: 10 answered a second, not 100
    assert answered_per_s({"Request Count": "1000", "Failure Count": "900", "Requests/s": "100"}) == 10
    assert answered_per_s({"Request Count": "0", "Failure Count": "0", "Requests/s": "0"}) == 0
