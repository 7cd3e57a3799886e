"""Bursts of clients at once, end to end against a real `ltp serve` of a tiny model, the
bare refusing app and nginx refusing everything; and the summary of bursts."""

from argparse import Namespace

from loadtest.scenarios.burst import FLOOR, NGINX_FLOOR, burst, summarize_bursts
from loadtest.traffic import Outcome


def test_bursts_reach_the_service_and_the_bare_app_and_are_counted(models_dir, tiny_csv,
                                                                    tmp_path):
    # a wait limit of a microsecond: a burst's first request queues, the rest are refused
    args = Namespace(models_dir=str(models_dir), model="tiny-ltp", dataset=str(tiny_csv),
                     clients=6, rounds=2, pause=0.1, out=str(tmp_path / "burst"),
                     serve_args=["--max-queue-wait-ms", "0.001"], server_dir=None)
    result = burst(args)
    service, floor = result["targets"]["service"], result["targets"][FLOOR]
    nginx = result["targets"][NGINX_FLOOR]  # `make test` installs nginx
    for target in (service, floor, nginx):
        assert target["rounds"] == 2 and target["server_errors"] == 0 and target["no_answer"] == 0
        assert target["accepted_per_round"] + target["refused_per_round"] == 6
    assert service["accepted_per_round"] >= 1 and service["refused_per_round"] >= 1
    for baseline in (floor, nginx):
        assert baseline["refused_per_round"] == 6 and baseline["accepted_per_round"] == 0
        r = baseline["refused_ms"]
        assert 0 < r["p50"] <= r["p99"] <= r["max"]
    report = (tmp_path / "burst" / "report.md").read_text()
    assert "| service | " in report and f"| {FLOOR} | 0 | 6 |" in report
    assert f"| {NGINX_FLOOR} | 0 | 6 |" in report


def test_summary_pools_the_refusals_and_gives_each_bursts_own_tail():
    first = [Outcome(0.0, 0.010, 429), Outcome(0.0, 0.020, 429), Outcome(0.0, 0.5, 200)]
    second = [Outcome(0.0, 0.002, 429), Outcome(0.0, 0.004, 429), Outcome(0.0, 0.0, 0),
              Outcome(0.0, 0.1, 503)]
    s = summarize_bursts([first, second])
    assert s["rounds"] == 2 and s["no_answer"] == 1 and s["server_errors"] == 1
    assert s["accepted_per_round"] == 0.5 and s["refused_per_round"] == 2
    assert abs(s["refused_ms"]["p50"] - 7.0) < 1e-9 and abs(s["refused_ms"]["max"] - 20.0) < 1e-9
    assert abs(s["round_p99_ms"]["min"] - 3.98) < 1e-9 and abs(s["round_p99_ms"]["max"] - 19.9) < 1e-9
