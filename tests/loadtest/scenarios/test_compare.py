"""The comparison's schedule of runs, with Locust replaced by made-up runs."""

import json
from argparse import Namespace

from loadtest.results import LoadResult
from loadtest.scenarios import compare


def test_compare_runs_each_repeat_over_all_targets_into_one_chart(tmp_path, monkeypatch):
    calls = []

    def fake_single(url, users, spawn_rate, duration_s, out, target, env, *, repeat, plots):
        calls.append((repeat, users, target, out.name, plots))
        out.mkdir(parents=True)
        return LoadResult(target, users, duration_s, 100, 0, 10.0 + repeat, 5, 9, 10 * repeat,
                              repeat=repeat)

    monkeypatch.setattr(compare, "single", fake_single)
    args = Namespace(dataset="amazon-food", duration=1, think=0.0, dense_model="dense-m",
                     ltp_model="ltp-a", concurrency="1,8", repeats=2)
    targets = [("ltp", "u1", "ltp-a"), ("dense", "u1", "dense-m"), ("naive pipeline", "u2", "")]
    results = compare.run_cells(args, targets, tmp_path)
    assert [c[:3] for c in calls] == [
        (k, u, t) for k in (1, 2) for u in (1, 8)
        for t in ("ltp (ltp-a)", "dense (dense-m)", "naive pipeline (pipeline)")]
    assert calls[-1][3] == "naive-pipeline-u8-r2" and calls[0][3] == "ltp-a-u1-r1"
    assert not any(plots for *_, plots in calls)
    assert [p.name for p in tmp_path.glob("**/*.png")] == ["comparison.png"]
    assert len(json.loads((tmp_path / "results.json").read_text())) == len(results) == 12
    assert "| 8 | ltp-a |" in (tmp_path / "report.md").read_text()
