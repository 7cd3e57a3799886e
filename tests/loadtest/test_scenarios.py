"""The served-against-offline report over repeated runs, from made-up rows: no server."""

from argparse import Namespace

from loadtest.scenarios import served_report


def row(model: str, repeat: int, served: float, offline: float, p99: float | None) -> dict:
    return {"model": model, "dtype": "fp32", "settings": "(defaults)", "repeat": repeat,
            "offline_seq_per_s": offline, "served_req_per_s": served,
            "served_over_offline": served / offline, "p50_ms": p99 and p99 / 2, "p99_ms": p99,
            "statuses": {"200": int(served * 20), "429": repeat}}


def cells(report: str, start: str) -> list[str]:
    line = next(line for line in report.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")]


def test_served_report_gives_spread_over_repeats_and_ratios_within_each():
    rows = [row("ltp", 1, 60.0, 80.0, 900), row("dense", 1, 40.0, 50.0, 1500),
            row("ltp", 2, 66.0, 80.0, 800), row("dense", 2, 30.0, 50.0, None)]
    args = Namespace(dataset="amazon-food", clients=32, duration=20, repeats=2, models="ltp,dense")
    report = served_report(rows, args)
    assert cells(report, "| ltp |") == ["ltp", "fp32", "(defaults)", "80.0", "63.0 (60.0–66.0)",
                                        "0.79 (0.75–0.82)", "425 (400–450)", "850 (800–900)",
                                        "{'200': 2520, '429': 3}"]
    assert cells(report, "| dense |")[6:8] == ["750", "1500"]  # one run without accepted requests
    # served LTP / dense: 1.50 in run 1, 2.20 in run 2
    assert cells(report, "| fp32 |") == ["fp32", "(defaults)", "1.85 (1.50–2.20)", "1.60"]
