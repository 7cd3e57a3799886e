"""The served-against-offline report over repeated runs, from made-up rows (no server), and
the per-thread CPU figures it reads from /proc."""

import json
import os
import threading
import time
from argparse import Namespace

from loadtest.scenarios import bad_input, bad_requests, cpu_split, offline_cpu_ms, served_report
from loadtest.traffic import thread_cpu_seconds


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
    assert cells(report, "| ltp |")[:9] == ["ltp", "fp32", "(defaults)", "80.0", "63.0 (60.0–66.0)",
                                            "0.79 (0.75–0.82)", "425 (400–450)", "850 (800–900)",
                                            "{'200': 2520, '429': 3}"]
    assert cells(report, "| ltp |")[9:] == ["-", "-", "-"]  # rows recorded without CPU figures
    assert cells(report, "| dense |")[6:8] == ["750", "1500"]  # one run without accepted requests
    # served LTP / dense: 1.50 in run 1, 2.20 in run 2
    assert cells(report, "| fp32 |") == ["fp32", "(defaults)", "1.85 (1.50–2.20)", "1.60"]


def test_served_report_splits_the_cpu_between_client_event_loop_and_workers():
    # offline: 80 seq/s on 2 cores = 25 CPU ms a sequence; 1.72 worker cores at that cost
    # answer 68.8 req/s, 0.86 of the offline 80
    cpu = {"loop_cores": 0.16, "worker_cores": 1.72, "worker_cpu_ms_per_request": 28.7,
           "offline_cpu_ms_per_seq": 25.0}
    rows = [row("ltp", 1, 60.0, 80.0, 900) | cpu | {"client_cores": 0.12}]
    args = Namespace(dataset="amazon-food", clients=32, duration=20, repeats=1, models="ltp")
    assert cells(served_report(rows, args), "| ltp |")[9:] == ["0.12 / 0.16 / 1.72", "28.7 (25.0)",
                                                               "0.86"]
    rows = [row("ltp", 1, 60.0, 80.0, 900) | cpu]  # recorded before the client was measured
    assert cells(served_report(rows, args), "| ltp |")[9] == "- / 0.16 / 1.72"


def test_cpu_split_counts_the_main_thread_apart_from_the_others():
    split = cpu_split(10, before={10: 1.0, 11: 5.0}, after={10: 3.0, 11: 15.0, 12: 4.0},
                      elapsed=10.0, answered=700)
    assert split == {"loop_cores": 0.2, "worker_cores": 1.4, "worker_cpu_ms_per_request": 20.0}
    assert cpu_split(10, {}, {10: 1.0}, 1.0, answered=0)["worker_cpu_ms_per_request"] is None
    assert offline_cpu_ms(len(os.sched_getaffinity(0)) * 10.0) == 100.0


def test_thread_cpu_seconds_sees_a_busy_thread():
    spun, release = threading.Event(), threading.Event()

    def spin():
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
        spun.set()
        release.wait(10)  # alive while measured: an ended thread leaves /proc/PID/task

    worker = threading.Thread(target=spin)
    before = thread_cpu_seconds(os.getpid())
    worker.start()
    spun.wait(10)
    after = thread_cpu_seconds(os.getpid())
    release.set()
    worker.join()
    assert os.getpid() in after and worker.native_id in after
    assert after[worker.native_id] - before.get(worker.native_id, 0.0) >= 0.1


def test_bad_input_run_gets_every_4xx_and_loses_no_good_request(models_dir, tiny_csv, tmp_path):
    """The scenario end to end against a real `ltp serve` of a tiny model."""
    args = Namespace(models_dir=str(models_dir), model="tiny-ltp", dataset=str(tiny_csv),
                     clients=2, duration=2, out=str(tmp_path / "bad"), serve_args=[],
                     server_dir=None)
    result = bad_input(args)
    assert result["unexpected"] == {}, result["bad"]
    assert result["server_errors"] == 0 and result["tracebacks_in_log"] == 0
    assert result["good_lost"] == 0 and result["good"].get("200", 0) > 0
    assert all(sum(case["answers"].values()) >= 1 for case in result["bad"].values())
    report = (tmp_path / "bad" / "report.md").read_text()
    assert "| a body over the byte limit | `/classify` | 413 | {'413':" in report


def test_bad_requests_follow_the_service_limits():
    from app.settings import Settings

    cases = bad_requests(Settings(max_inputs=3, max_text_chars=50, max_body_bytes=100,
                                  max_model_name_chars=8))
    assert json.loads(cases["too many inputs"][1])["inputs"] == ["a"] * 4
    assert len(json.loads(cases["a text over the character limit"][1])["inputs"]) == 51
    assert len(cases["a body over the byte limit"][1]) > 100
    assert len(json.loads(cases["model name over the limit"][1])["model"]) == 9
    assert {status for _, _, status in cases.values()} == {413, 422}
