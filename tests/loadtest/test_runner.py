"""The locustfile and the runner, end to end against a real server with a tiny model."""

import json

from loadtest.run import single


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


def test_compare_report_gives_each_ltp_model_its_ratios():
    from argparse import Namespace

    from loadtest.run import LoadResult, compare_report

    def result(target, users, rps, p99):
        return LoadResult(target, users, 30, int(rps * 30), 0, rps, p99 / 2, p99 * 0.9, p99)

    args = Namespace(dataset="amazon-food", duration=30, think=0.0, dense_model="dense-m",
                     ltp_model="ltp-a,ltp-b")
    results = [result("ltp (ltp-a)", 32, 120.0, 600), result("ltp (ltp-b)", 32, 150.0, 450),
               result("dense (dense-m)", 32, 80.0, 900),
               result("naive pipeline (pipeline)", 32, 30.0, 2800),
               result("ltp (ltp-a)", 1, 40.0, 70)]
    rows = [line for line in compare_report(results, args).splitlines()
            if line.startswith(("| 32 |", "| 1 |"))]
    assert rows == ["| 1 | ltp-a | - | - | - |",
                    "| 32 | ltp-a | 1.50 | 4.00 | 0.67 |",
                    "| 32 | ltp-b | 1.88 | 5.00 | 0.50 |"]


def test_compare_runs_each_repeat_over_all_targets_into_one_chart(tmp_path, monkeypatch):
    from argparse import Namespace

    from loadtest import run

    calls = []

    def fake_single(url, users, spawn_rate, duration_s, out, target, env, *, repeat, plots):
        calls.append((repeat, users, target, out.name, plots))
        out.mkdir(parents=True)
        return run.LoadResult(target, users, duration_s, 100, 0, 10.0 + repeat, 5, 9, 10 * repeat,
                              repeat=repeat)

    monkeypatch.setattr(run, "single", fake_single)
    args = Namespace(dataset="amazon-food", duration=1, think=0.0, dense_model="dense-m",
                     ltp_model="ltp-a", concurrency="1,8", repeats=2)
    targets = [("ltp", "u1", "ltp-a"), ("dense", "u1", "dense-m"), ("naive pipeline", "u2", "")]
    results = run.run_cells(args, targets, tmp_path)
    assert [c[:3] for c in calls] == [
        (k, u, t) for k in (1, 2) for u in (1, 8)
        for t in ("ltp (ltp-a)", "dense (dense-m)", "naive pipeline (pipeline)")]
    assert calls[-1][3] == "naive-pipeline-u8-r2" and calls[0][3] == "ltp-a-u1-r1"
    assert not any(plots for *_, plots in calls)
    assert [p.name for p in tmp_path.glob("**/*.png")] == ["comparison.png"]
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(results) == 12
    assert "| 8 | ltp-a |" in (tmp_path / "report.md").read_text()


def test_throughput_counts_answered_requests_only():
    from loadtest.run import answered_per_s

    # 1,000 requests in the run, 900 of them fast refusals: 10 answered a second, not 100
    assert answered_per_s({"Request Count": "1000", "Failure Count": "900", "Requests/s": "100"}) == 10
    assert answered_per_s({"Request Count": "0", "Failure Count": "0", "Requests/s": "0"}) == 0
