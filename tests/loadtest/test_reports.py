"""The comparison's report and chart, and the served-against-offline report, from made-up
runs: no server."""

from argparse import Namespace

import pytest
from PIL import Image

from loadtest.reports import compare_report, plot_comparison, served_report
from loadtest.results import LoadResult

TARGETS = ("ltp (ltp-a)", "dense (dense-m)", "naive pipeline (pipeline)")
ARGS = Namespace(dataset="amazon-food", duration=30, think=0.0, dense_model="dense-m",
                 ltp_model="ltp-a")


def result(target: str, users: int, rps: float, p99: float, repeat: int) -> LoadResult:
    return LoadResult(target, users, 30, int(rps * 30), 0, rps, p99 / 2, p99 * 0.9, p99,
                      repeat=repeat)


@pytest.fixture
def runs() -> list[LoadResult]:
    """2 repeats x 2 concurrencies x 3 targets, interleaved as `compare` runs them."""
    rps = {"ltp (ltp-a)": 100.0, "dense (dense-m)": 50.0, "naive pipeline (pipeline)": 25.0}
    out = []
    for repeat in (1, 2):
        for users in (1, 32):
            for target in TARGETS:
                scale = users ** 0.5 * (1.0 if repeat == 1 else 1.2)
                out.append(result(target, users, rps[target] * scale,
                                  1000 * users / rps[target] / scale, repeat))
    return out


def row(report: str, start: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_report_gives_mean_and_range_of_the_runs(runs):
    report = compare_report(runs, ARGS)
    for users in (1, 32):
        for target in TARGETS:
            cells = row(report, f"| {target} | {users} |")
            mine = [r for r in runs if r.users == users and r.target == target]
            lo, hi = min(r.requests_per_s for r in mine), max(r.requests_per_s for r in mine)
            mean = (lo + hi) / 2
            assert cells[2] == "2"
            assert cells[4] == f"{mean:.1f} ({lo:.1f}–{hi:.1f})"
            lo, hi = min(r.p99_ms for r in mine), max(r.p99_ms for r in mine)
            assert cells[7] == f"{(lo + hi) / 2:.0f} ({lo:.0f}–{hi:.0f})"
    # every run of a repeat scales alike, so the within-run ratios have no spread
    assert row(report, "| 32 | ltp-a |") == ["32", "ltp-a", "2.00 (2.00–2.00)", "4.00 (4.00–4.00)",
                                            "0.50 (0.50–0.50)"]


def test_ratios_are_taken_within_each_repeat(runs):
    # repeat 2's dense run at 32 users as fast as its LTP run: ratios 2.00 and 1.00
    at = {(r.repeat, r.users, r.target): r for r in runs}
    at[2, 32, "dense (dense-m)"].requests_per_s = at[2, 32, "ltp (ltp-a)"].requests_per_s
    cells = row(compare_report(runs, ARGS), "| 32 | ltp-a |")
    assert cells[2] == "1.50 (1.00–2.00)"


def test_chart_is_one_png_of_the_whole_comparison(runs, tmp_path):
    path = tmp_path / "comparison.png"
    figure = plot_comparison(runs, path, "LTP vs dense vs naive pipeline")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 800 <= width <= 2000 and 300 <= height <= 1000
    assert width > height  # side by side
    assert path.stat().st_size > 10_000
    # what it drew: per panel a bar per (target, concurrency) at the mean of its runs, error
    # bars to the lowest and highest run, a dot per run
    from matplotlib.container import BarContainer, ErrorbarContainer

    for ax, field in zip(figure.axes[:2], ("requests_per_s", "p99_ms"), strict=True):
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert [c.get_label() for c in bars] == list(TARGETS)
        dots = [tuple(sorted(c.get_offsets()[:, 1])) for c in ax.collections]
        for target, container in zip(TARGETS, bars, strict=True):
            mine = {u: sorted(getattr(r, field) for r in runs if r.target == target and r.users == u)
                    for u in (1, 32)}
            assert [p.get_height() for p in container.patches] == [
                pytest.approx(sum(v) / 2) for v in mine.values()]
            assert all(tuple(v) in dots for v in mine.values())
            errors = container.errorbar
            assert isinstance(errors, ErrorbarContainer)
            lows_highs = errors.lines[2][0].get_segments()
            assert [(a[1], b[1]) for a, b in lows_highs] == [
                (pytest.approx(v[0]), pytest.approx(v[1])) for v in mine.values()]


def test_compare_report_gives_each_ltp_model_its_ratios():
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


def served_row(model: str, repeat: int, served: float, offline: float, p99: float | None) -> dict:
    return {"model": model, "dtype": "fp32", "settings": "(defaults)", "repeat": repeat,
            "offline_seq_per_s": offline, "served_req_per_s": served,
            "served_over_offline": served / offline, "p50_ms": p99 and p99 / 2, "p99_ms": p99,
            "statuses": {"200": int(served * 20), "429": repeat}}


def test_served_report_gives_spread_over_repeats_and_ratios_within_each():
    rows = [served_row("ltp", 1, 60.0, 80.0, 900), served_row("dense", 1, 40.0, 50.0, 1500),
            served_row("ltp", 2, 66.0, 80.0, 800), served_row("dense", 2, 30.0, 50.0, None)]
    args = Namespace(dataset="amazon-food", clients=32, duration=20, repeats=2, models="ltp,dense")
    report = served_report(rows, args)
    assert row(report, "| ltp |")[:9] == ["ltp", "fp32", "(defaults)", "80.0", "63.0 (60.0–66.0)",
                                            "0.79 (0.75–0.82)", "425 (400–450)", "850 (800–900)",
                                            "{'200': 2520, '429': 3}"]
    assert row(report, "| ltp |")[9:] == ["-", "-", "-"]  # rows recorded without CPU figures
    assert row(report, "| dense |")[6:8] == ["750", "1500"]  # one run without accepted requests
    # served LTP / dense: 1.50 in run 1, 2.20 in run 2
    assert row(report, "| fp32 |") == ["fp32", "(defaults)", "1.85 (1.50–2.20)", "1.60"]


def test_served_report_splits_the_cpu_between_client_event_loop_and_workers():
    # offline: 80 seq/s on 2 cores = 25 CPU ms a sequence; 1.72 worker cores at that cost
    # answer 68.8 req/s, 0.86 of the offline 80
    cpu = {"loop_cores": 0.16, "worker_cores": 1.72, "worker_cpu_ms_per_request": 28.7,
           "offline_cpu_ms_per_seq": 25.0}
    rows = [served_row("ltp", 1, 60.0, 80.0, 900) | cpu | {"client_cores": 0.12}]
    args = Namespace(dataset="amazon-food", clients=32, duration=20, repeats=1, models="ltp")
    assert row(served_report(rows, args), "| ltp |")[9:] == ["0.12 / 0.16 / 1.72 / -",
                                                               "28.7 (25.0)", "0.86"]
    rows = [served_row("ltp", 1, 60.0, 80.0, 900) | cpu]  # recorded before the client was measured
    assert row(served_report(rows, args), "| ltp |")[9] == "- / 0.16 / 1.72 / -"
    rows = [served_row("ltp", 1, 60.0, 80.0, 900) | cpu | {"client_cores": 0.12, "idle_cores": 0.3}]
    assert row(served_report(rows, args), "| ltp |")[9] == "0.12 / 0.16 / 1.72 / 0.30"
