"""The comparison's report and chart from made-up runs: no server."""

from argparse import Namespace

import pytest
from PIL import Image

from loadtest.comparison import compare_report, plot_comparison
from loadtest.results import LoadResult, Spread

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


def test_three_or_more_runs_give_mean_and_standard_deviation():
    assert Spread((1.0, 2.0, 3.0)).text(".1f") == "2.0 ± 1.0"
    assert Spread((1.0, 2.0, 3.0)).range_text(".1f") == "2.0 (1.0–3.0)"
    assert Spread((4.0,)).text(".1f") == "4.0"


def test_chart_is_one_png_of_the_whole_comparison(runs, tmp_path):
    path = tmp_path / "comparison.png"
    plot_comparison(runs, path, "LTP vs dense vs naive pipeline")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 800 <= width <= 2000 and 300 <= height <= 1000
    assert width > height  # side by side
    assert path.stat().st_size > 10_000
