"""The ltp command line, end to end on tiny artifacts."""

import json

import pytest

from ltp.cli.parser import main
from tests.conftest import assert_bar_reaches, tiny_classifier, tiny_tokenizer


def run_json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_reports_dense_and_pruned(capsys, tiny_artifact_dir, tiny_csv):
    result = run_json(capsys, "bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
                      "--split", "train", "--batch-size", "8", "--rounds", "1",
                      "--max-length", "32")
    for key in ("dense_seq_per_s", "pruned_seq_per_s", "speedup", "relative_flops",
                "relative_model_flops", "dense_latency_ms_b1", "pruned_latency_ms_b1",
                "kept_fraction_per_layer", "examples", "device", "dtype",
                "pruned_gflops_per_s", "matmul_peak_gflops_per_s", "pruned_fraction_of_peak"):
        assert key in result
    assert 0 < result["relative_flops"] < 1, "the tiny artifact's thresholds prune"
    assert result["examples"] == 64
    assert result["device"] == "cpu"
    assert result["matmul_peak_gflops_per_s"] > 0 and result["pruned_gflops_per_s"] > 0
    # the figures are of one another: speedups are ratios of the timings, the fraction of
    # peak that of the two GFLOP/s, the kept fractions fall layer by layer
    assert result["speedup"] == pytest.approx(result["pruned_seq_per_s"] / result["dense_seq_per_s"])
    assert result["latency_speedup_b1"] == pytest.approx(
        result["dense_latency_ms_b1"] / result["pruned_latency_ms_b1"])
    assert result["pruned_fraction_of_peak"] == pytest.approx(
        result["pruned_gflops_per_s"] / result["matmul_peak_gflops_per_s"])
    kept = result["kept_fraction_per_layer"]
    assert len(kept) == 3 and kept == sorted(kept, reverse=True) and 0 < kept[-1] < 1
    assert result["relative_model_flops"] < 1 and result["rounds"] == 1 and result["batch_size"] == 8


def test_bench_in_arrival_order_pads_more_and_prunes_the_same(capsys, tiny_artifact_dir, tiny_csv):
    args = ("bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "train",
            "--batch-size", "8", "--rounds", "1", "--max-length", "32")
    by_length = run_json(capsys, *args)
    arrival = run_json(capsys, *args, "--order", "arrival")
    assert (by_length["order"], arrival["order"]) == ("length", "arrival")
    assert 0 <= by_length["padding_ratio"] < arrival["padding_ratio"] < 1
    # the same inputs, grouped differently: the kept tokens do not depend on the batch
    assert arrival["relative_flops"] == pytest.approx(by_length["relative_flops"])
    assert arrival["kept_fraction_per_layer"] == pytest.approx(by_length["kept_fraction_per_layer"])


def test_bench_bf16_reports_difference_from_fp32(capsys, tiny_artifact_dir, tiny_csv):
    result = run_json(capsys, "bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
                      "--dtype", "bf16", "--batch-size", "16", "--rounds", "1",
                      "--max-examples", "16")
    assert 0 <= result["max_logit_diff_vs_fp32"] < 0.5
    assert 0 <= result["label_agreement_vs_fp32"] <= 1
    assert result["max_logit_diff_vs_fp32"] > 0, "bf16 rounds: its logits are not fp32's"
    # agreements are shares of the inputs compared (the test split's 8) and of their tokens
    assert result["accuracy_examples"] == 8 and result["dtype"] == "bf16"
    agreeing = result["label_agreement_vs_fp32"] * 8
    assert agreeing == pytest.approx(round(agreeing)) and 0 <= result["keep_agreement_vs_fp32"] <= 1


def test_convert_then_info(capsys, tmp_path):
    source = tmp_path / "hf"
    tiny_classifier("bert").save_pretrained(source)
    tiny_tokenizer(tmp_path).save_pretrained(source)
    out = tmp_path / "ltp"
    result = run_json(capsys, "convert", str(source), "--out", str(out),
                      "--final-threshold", "0.02", "--max-length", "32")
    assert result["thresholds"][-1] == pytest.approx(0.02)
    info = run_json(capsys, "info", str(out))
    assert info["pruning"]["normalizer"] == 32
    assert info["labels"] == ["LABEL_0", "LABEL_1", "LABEL_2"]


def test_errors_exit_2_with_a_message(capsys, tmp_path, tiny_artifact_dir):
    assert main(["bench", str(tmp_path), "--dataset", "amazon-food"]) == 2
    assert main(["bench", str(tiny_artifact_dir), "--dataset", "nope"]) == 2
    assert "unknown data set" in capsys.readouterr().err


def test_version_is_the_package_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ltp {version('ltp-serve')}"


def subcommand_parsers():
    import argparse

    from app.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_help_line_shows_its_default():
    import argparse

    parsers = subcommand_parsers()
    assert {"bench", "eval", "sweep", "build", "serve"} <= set(parsers)
    for name, parser in parsers.items():
        text = " ".join(parser.format_help().split())  # argparse wraps lines anywhere
        assert "default: None" not in text and "(default: False)" not in text, name
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, "", argparse.SUPPRESS):
                assert f"(default: {action.default})" in text, (name, action.dest)
    serve = " ".join(parsers["serve"].format_help().split())
    assert "--max-batch-size MAX_BATCH_SIZE sequences per batch (0: auto" in serve
    assert "else 32) (default: 0; env LTP_MAX_BATCH_SIZE)" in serve


def table_rows(out: str) -> dict[str, str]:
    """First cell -> second cell of each table row (rich draws cells between │)."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    return {row[0]: row[1] for row in cells if len(row) >= 2}


def test_info_prints_a_table_for_people(capsys, tiny_artifact_dir):
    assert main(["info", str(tiny_artifact_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ltp info")
    rows = table_rows(out)
    assert rows["pruning.normalizer"] == "16" and rows["labels"] == "neg pos"
    assert rows["max_length"] == "32" and rows["pruning.thresholds"] == "0 0.03 0.06"
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_bench_table_has_the_json_figures(capsys, tiny_artifact_dir, tiny_csv):
    from ltp.cli.output import format_value

    argv = ["bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "train",
            "--batch-size", "16", "--rounds", "1", "--max-examples", "32"]
    figures = run_json(capsys, *argv)
    assert main(argv) == 0
    rows = table_rows(capsys.readouterr().out)
    for key in ("relative_flops", "kept_fraction_per_layer", "examples", "dtype", "device"):
        assert rows[key] == format_value(figures[key]), key
    for key in ("speedup", "dense_seq_per_s", "pruned_latency_ms_b1"):
        assert float(rows[key]) > 0, key  # timings differ from run to run
    assert float(rows["timing_spread.dense"]) >= 0, "nested figures get dotted rows"


def test_eval_table_has_a_per_class_table_and_json_parses(capsys, tiny_artifact_dir, tiny_csv):
    argv = ["eval", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "train"]
    figures = run_json(capsys, *argv)
    assert set(figures["per_class"]) == {"neg", "pos"} and figures["examples"] == 64
    assert main(argv) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert rows["accuracy"] == f"{figures['accuracy']:.4g}" and rows["examples"] == "64"
    assert "per_class" in out and {"neg", "pos"} <= set(rows), "one row per class"


def test_progress_goes_to_stderr_and_json_stays_clean(capsys, monkeypatch, tiny_artifact_dir, tiny_csv):
    import ltp.cli.commands

    monkeypatch.setattr(ltp.cli.commands, "show_progress", lambda: True)
    figures = run_json(capsys, "eval", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
                       "--split", "train")
    assert figures["examples"] == 64
    assert main(["eval", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--json"]) == 0
    assert "eval compact" in capsys.readouterr().err
    assert main(["bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "train",
                 "--batch-size", "16", "--rounds", "2", "--max-examples", "16", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["rounds"] == 2
    assert "bench" in out.err and "6/6" in out.err
    assert_bar_reaches(out.err, "bench", 2 * (2 + 1))  # (warm-up + rounds) x (batched, batch 1)


def test_bench_runtimes_progress_and_table(capsys, monkeypatch, tiny_artifact_dir, tiny_csv, tmp_path):
    import ltp.cli.commands

    monkeypatch.setattr(ltp.cli.commands, "show_progress", lambda: True)
    assert main(["bench-runtimes", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split",
                 "train", "--max-length", "32", "--rounds", "2", "--latency-examples", "2",
                 "--runtimes", "torch-fp32,ltp-fp32", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "runtimes" in out.err and "8/8" in out.err, "(accuracy + rounds + latency) x runtimes"
    assert_bar_reaches(out.err, "runtimes", (1 + 2 + 1) * 2)
    rows = table_rows(out.out)
    assert {"torch-fp32", "ltp-fp32"} <= set(rows), "one row per runtime"
    assert rows["rounds"] == "2" and "x_torch_fp32" in out.out


def test_precisions_records_what_serve_auto_reads(capsys, tiny_artifact_dir, tiny_csv):
    from ltp.core.precision import recorded_accuracy

    argv = ["precisions", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
            "--precisions", "fp32,int8", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {row["precision"]: row for row in out["rows"]}
    assert set(rows) == {"fp32", "int8"}
    assert recorded_accuracy(tiny_artifact_dir) == {p: rows[p]["accuracy"] for p in rows}
    assert main(["eval", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "dev",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == rows["fp32"]["accuracy"]
