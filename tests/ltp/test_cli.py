"""The ltp command line, end to end on tiny artifacts."""

import json

import pytest

from ltp.cli import main
from tests.conftest import tiny_classifier, tiny_tokenizer


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


def test_bench_bf16_reports_difference_from_fp32(capsys, tiny_artifact_dir, tiny_csv):
    result = run_json(capsys, "bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
                      "--dtype", "bf16", "--batch-size", "16", "--rounds", "1",
                      "--max-examples", "16")
    assert 0 <= result["max_logit_diff_vs_fp32"] < 0.5
    assert 0 <= result["label_agreement_vs_fp32"] <= 1


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
