"""The README's headline table: figures read from reports, the rules that pick them."""

import json

from ltp.bench.headline import (
    BEGIN,
    END,
    ROWS,
    batch1,
    batch32,
    current,
    overload,
    render,
    rewrite,
    same_engine,
    same_schedule,
    service,
    small_data,
    sweep,
)
from ltp.cli.parser import main


def _runtimes(**ltp_int8):
    rows = [
        {"runtime": "torch-fp32", "accuracy": 0.850, "seq_per_s": 40.0, "p50_latency_ms_b1": 30.0},
        {"runtime": "ort-int8", "accuracy": 0.849, "seq_per_s": 60.0, "p50_latency_ms_b1": 15.0},
        {"runtime": "ltp-fp32", "accuracy": 0.845, "seq_per_s": 90.0, "p50_latency_ms_b1": 12.0},
        {"runtime": "ltp-int8", "accuracy": 0.835, "seq_per_s": 150.0, "p50_latency_ms_b1": 6.0,
         **ltp_int8},
    ]
    for r in rows:
        r["x_best_dense"] = r["seq_per_s"] / 60.0
        r["b1_vs_fastest_dense"] = r["p50_latency_ms_b1"] / 15.0
    return {"rows": rows, "best_dense": "ort-int8", "fastest_dense_b1": "ort-int8",
            "relative_flops": 0.48, "device_name": "Some CPU"}


def test_only_ltp_within_a_point_of_dense_fp32_counts():
    # ltp-int8 is 1.5 pt below dense fp32: faster, but not a headline figure
    assert batch32(_runtimes()).startswith("ltp-fp32 90.0 seq/s, **1.50x** ort-int8 dense")
    assert batch1(_runtimes()).startswith("ltp-fp32 p50 12.0 ms, **0.80x** ort-int8 dense")
    # within a point it is
    assert batch32(_runtimes(accuracy=0.841)).startswith("ltp-int8 150.0 seq/s, **2.50x**")
    assert "**0.40x**" in batch1(_runtimes(accuracy=0.841))


def test_same_engine_figures_are_those_of_each_ort_row():
    result = _runtimes()
    result["rows"][2]["same_engine"] = {"speedup": 1.6, "efficiency": 0.83, "speedup_b1": 1.4,
                                        "efficiency_b1": 0.72}
    assert same_engine(result) == "ltp-fp32: batch 32 **1.60x** (efficiency 0.83), batch 1 1.40x (0.72)"


def test_service_ratios_are_taken_within_each_repeat():
    runs = []
    for repeat, (ltp_ms, dense_ms, ltp_rps, dense_rps) in enumerate(((10, 20, 80, 40), (12, 20, 90, 50)), 1):
        runs += [
            {"target": "ltp (m)", "users": 1, "repeat": repeat, "p50_ms": ltp_ms, "p99_ms": 30,
             "requests_per_s": 1},
            {"target": "dense (d)", "users": 1, "repeat": repeat, "p50_ms": dense_ms, "p99_ms": 40,
             "requests_per_s": 1},
            {"target": "ltp (m)", "users": 32, "repeat": repeat, "p50_ms": 1, "p99_ms": 1,
             "requests_per_s": ltp_rps},
            {"target": "dense (d)", "users": 32, "repeat": repeat, "p50_ms": 1, "p99_ms": 1,
             "requests_per_s": dense_rps},
            {"target": "naive pipeline (pipeline)", "users": 32, "repeat": repeat, "p50_ms": 1,
             "p99_ms": 1, "requests_per_s": 5},
        ]
    text = service(runs)
    assert "1 client: p50 **0.50-0.60x** dense's; 1 client: p99 **0.75x** dense's" in text
    assert "32 clients: req/s **1.80-2.00x** dense's" in text
    assert "(2 runs a cell)" in text


def test_the_table_reads_every_report_and_says_which_are_missing(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/runtimes-amazon-food.json").write_text(json.dumps(_runtimes()))
    table = render(tmp_path)
    lines = table.splitlines()
    assert len(lines) == 2 + len(ROWS)
    assert "1.50x" in lines[2] and "| Some CPU |" in lines[2]
    assert "[runtimes-amazon-food.md](reports/runtimes-amazon-food.md)" in lines[2]
    missing = [line for line in lines[2:] if "not measured yet" in line]
    # only the runtimes report exists: every row but its own is missing
    own = sum(r.source == "reports/runtimes-amazon-food.json" for r in ROWS)
    assert len(missing) == len(ROWS) - own == len(ROWS) - 3
    assert "not in this run" in lines[4], "a runtimes report without the dense parent on our engine"
    assert "another run" not in lines[2]


def test_further_runs_of_a_report_show_their_ratio_beside_it(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/runtimes-amazon-food.json").write_text(json.dumps(_runtimes()))
    slower = _runtimes()
    next(r for r in slower["rows"] if r["runtime"] == "ltp-fp32")["x_best_dense"] = 1.25
    (tmp_path / "reports/runtimes-amazon-food-run2.json").write_text(json.dumps(slower))
    batch32_line = render(tmp_path).splitlines()[2]
    assert "**1.50x**" in batch32_line and batch32_line.count("another run: 1.25x") == 1


def test_the_cli_rewrites_the_readme_and_checks_it(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN}\nold figures\n{END}\n\nmore\n")
    assert main(["headline", "--readme", str(readme), "--check"]) == 1
    assert main(["headline", "--readme", str(readme), "--write"]) == 0
    text = readme.read_text()
    assert current(text) == render(tmp_path) and text.endswith(f"{END}\n\nmore\n")
    assert main(["headline", "--readme", str(readme), "--check"]) == 0
    assert rewrite(text, current(text)) == text


def test_overload_gives_the_refusals_after_the_opening_where_a_run_has_them():
    result = {"clients": 200, "statuses": {"200": 8000, "429": 1900}, "server_errors": 0,
              "accepted_ms": {"p99": 550.0}, "refused_ms": {"p99": 33.0}}
    assert overload(result) == ("200 clients: 8,000 answered, 1,900 refused; accepted p99 0.55 s, "
                                "refused p99 **33 ms**; 0 5xx")
    later = overload(result | {"refused_after_opening_ms": {"p50": 2.0, "p99": 7.2, "max": 9.0}})
    assert "refused p99 **33 ms** (7 ms after the first second); 0 5xx" in later


def test_small_data_gives_the_medians_over_the_seeds():
    def build(dense, tfidf, ltp, flops):
        return {"dense": {"accuracy": dense, "macro_f1": dense - 0.01},
                "baseline_tfidf": {"accuracy": tfidf, "macro_f1": tfidf - 0.02},
                "ltp": {"accuracy": ltp, "macro_f1": ltp - 0.01, "relative_flops": flops}}

    result = {"rows": 600, "dataset": "rt-polarity", "cpu": "Some CPU",
              "builds": [build(0.747, 0.670, 0.741, 0.45), build(0.760, 0.670, 0.750, 0.47),
                         build(0.700, 0.670, 0.690, 0.40)]}
    assert small_data(result) == (
        "600 rows of rt-polarity, 3 seeds (median): dense **74.7** against TF-IDF 67.0 "
        "(macro-F1 73.7 against 65.0); LTP 74.1 at 0.45 relative FLOPs")


def _sweep_row(method, setting, seed, accuracy, flops):
    """A row of a sweep's CSV, as ``csv.DictReader`` gives it."""
    return {"method": method, "setting": setting, "seed": seed, "accuracy": str(accuracy),
            "relative_flops": str(flops), "relative_model_flops": str(flops),
            "kept_fraction_per_layer": "1.000"}


def test_the_sweep_cell_takes_each_setting_at_its_median_over_seeds():
    rows = [_sweep_row("LTP", "target 0.5", 0, 0.80, 0.50),
            _sweep_row("LTP", "target 0.5", 1, 0.86, 0.49),
            _sweep_row("LTP", "target 0.5", 2, 0.82, 0.50),
            _sweep_row("top-k + fine-tune", "LTP's schedule", 0, 0.79, 0.50),
            _sweep_row("top-k + fine-tune", "LTP's schedule", 1, 0.81, 0.50),
            _sweep_row("top-k + fine-tune", "LTP's schedule", 2, 0.85, 0.50),
            _sweep_row("truncation", "max 16 tokens", "", 0.70, 0.45)]
    # the median seed (82.0), not the best one (86.0); top-k + fine-tune likewise (81.0)
    assert sweep(rows) == ("LTP 82.0 (median of 3 seeds) at 0.50 relative FLOPs; at or under "
                           "the same FLOPs top-k + fine-tune 81.0, truncation 70.0")


def test_the_schedule_cell_sets_ltp_beside_topk_on_its_own_schedule():
    target = "FLOPs target 0.5, median scores, soft stage, distill 0.5"
    rows = [_sweep_row("dense", "no pruning", "", 0.837, 1.0),
            *(_sweep_row("LTP", target, s, a, 0.50) for s, a in enumerate((0.835, 0.828, 0.838))),
            *(_sweep_row("top-k + fine-tune", "LTP's schedule for FLOPs 0.5", s, a, 0.51)
              for s, a in enumerate((0.824, 0.824, 0.827)))]
    assert same_schedule(rows) == (
        "LTP **83.5** (median of 3 seeds) at 0.50 relative FLOPs, dense 83.7; top-k on the "
        "same schedule, fine-tuned alike, 82.4")
    assert same_schedule(rows[:1]) == "no LTP run at a FLOPs target"
