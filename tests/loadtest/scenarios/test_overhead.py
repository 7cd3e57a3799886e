"""One request at a time and resident memory, end to end against a real `ltp serve` of a tiny
model, through ``python -m loadtest``'s table."""

import json

from loadtest.__main__ import main


def test_overhead_measures_single_requests_and_memory(models_dir, tiny_csv, tmp_path, capsys):
    out = tmp_path / "overhead"
    assert main(["overhead", "--models-dir", str(models_dir), "--model", "tiny-ltp",
                 "--dataset", str(tiny_csv), "--requests", "5", "--clients", "2",
                 "--duration", "1", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["requests_one_at_a_time"] == 5 and result["server_errors"] == 0
    assert 0 <= result["idle_overhead_ms_p50"] <= result["idle_total_ms_p50"]
    assert result["idle_overhead_ms_p50"] <= result["idle_overhead_ms_p90"]
    assert 0 < result["rss_mib_idle"] and 0 < result["rss_mib_after_load"]
    assert result["load"]["statuses"].get("200", 0) > 0
    report = (out / "report.md").read_text()
    assert capsys.readouterr().out == report
    row = report.splitlines()[-1]
    assert row == (f"| {result['idle_total_ms_p50']:.1f} | {result['idle_overhead_ms_p50']:.1f} / "
                   f"{result['idle_overhead_ms_p90']:.1f} | {result['rss_mib_idle']:.0f} | "
                   f"{result['rss_mib_after_load']:.0f} |")
