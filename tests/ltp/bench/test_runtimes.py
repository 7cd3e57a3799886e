"""The runtime comparison, end to end on a tiny model."""

import json

import pytest

from ltp.bench.runtimes import RUNTIMES
from ltp.cli.parser import main


def test_bench_runtimes_writes_a_report(capsys, tiny_artifact_dir, tiny_csv, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "reports"
    assert main(["bench-runtimes", str(tiny_artifact_dir), "--dataset", str(tiny_csv),
                 "--split", "train", "--max-length", "32", "--rounds", "1",
                 "--latency-examples", "3", "--out", str(out), "--runtimes", ",".join(RUNTIMES),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["runtime"]: r for r in result["rows"]}
    assert set(rows) == set(RUNTIMES)
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and row["seq_per_s"] > 0 and row["p50_latency_ms_b1"] > 0
        assert row["examples"] == 64
        assert row["accuracy"] * 64 == pytest.approx(round(row["accuracy"] * 64)), "right answers of 64"
        assert row["x_torch_fp32"] == pytest.approx(row["seq_per_s"] / rows["torch-fp32"]["seq_per_s"])
    assert rows["torch-fp32"]["x_torch_fp32"] == 1.0
    # the dense runtimes compute the same model: fp32 predictions agree
    assert rows["ort-fp32"]["accuracy"] == rows["torch-fp32"]["accuracy"]
    # the dense parent on the ort engine (here the LTP artifact with nothing pruned) too
    assert rows["dense-ort-fp32"]["accuracy"] == rows["torch-fp32"]["accuracy"]
    for precision in ("fp32", "int8"):  # LTP against the dense model on the same engine
        same, dense = rows[f"ltp-ort-{precision}"]["same_engine"], rows[f"dense-ort-{precision}"]
        ltp = rows[f"ltp-ort-{precision}"]
        assert same["speedup"] == pytest.approx(ltp["seq_per_s"] / dense["seq_per_s"])
        assert same["efficiency"] == pytest.approx(same["speedup"] * result["relative_engine_flops"])
        assert same["efficiency_b1"] == pytest.approx(same["speedup_b1"] * result["relative_engine_flops"])
        assert same["speedup_b1"] == pytest.approx(dense["p50_latency_ms_b1"] / ltp["p50_latency_ms_b1"])
    assert all(r["same_engine"] is None for name, r in rows.items() if not name.startswith("ltp-ort-"))
    # the dense parent on our engine is the same-engine reference, not a runtime a user
    # would pick instead
    assert not result["best_dense"].startswith("dense-")
    assert not result["fastest_dense_b1"].startswith("dense-")
    assert 0 < result["relative_engine_flops"] <= 1
    report = (out / f"runtimes-{tiny_csv.stem}.md").read_text()
    assert "| ltp-int8 |" in report and f"runtimes-{tiny_csv.stem}.png" in report
    assert (out / f"runtimes-{tiny_csv.stem}.png").stat().st_size > 1000
    # the table has each runtime's figures, in order; the chart a bar per runtime (its
    # height grows with them: 0.45 inch a bar and 1.2 more, at 110 dpi)
    table = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line][1:]
    table = table[:len(result["rows"])]  # the same-engine table follows
    assert [line.split(" | ")[:3] for line in table] == [
        [f"| {r['runtime']}", f"{r['accuracy'] * 100:.1f}", f"{r['seq_per_s']:.1f}"]
        for r in result["rows"]]
    same = report.split("Same engine, same precision")[1]
    assert "| ltp-ort-int8 | " in same and "| ltp-fp32 |" not in same
    from PIL import Image

    with Image.open(out / f"runtimes-{tiny_csv.stem}.png") as image:
        assert image.size[0] == 770 and abs(image.size[1] - (0.45 * len(RUNTIMES) + 1.2) * 110) <= 1


def test_default_runtimes_skip_emulated_bf16():
    from ltp.bench.runtimes import native_runtimes

    assert native_runtimes({"avx2", "avx512_bf16"}) == list(RUNTIMES)
    assert native_runtimes({"avx2"}) == [r for r in RUNTIMES if not r.endswith("-bf16")]


def test_bench_int8_reports_agreement_with_fp32(capsys, tiny_artifact_dir, tiny_csv):
    assert main(["bench", str(tiny_artifact_dir), "--dataset", str(tiny_csv), "--split", "train",
                 "--dtype", "int8", "--batch-size", "16", "--rounds", "1", "--max-length", "32",
                 "--max-examples", "32", "--profile", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("speedup", "relative_flops", "accuracy", "dense_accuracy"):
        assert key in result
    assert result["speedup"] == pytest.approx(result["pruned_seq_per_s"] / result["dense_seq_per_s"])
    assert 0 < result["relative_flops"] < 1 and result["accuracy_examples"] == 32
    for key in ("accuracy", "dense_accuracy"):  # right answers over the 32 inputs
        assert result[key] * 32 == pytest.approx(round(result[key] * 32)), key
    assert 0.9 <= result["label_agreement_vs_fp32"] <= 1
    assert 0.8 <= result["keep_agreement_vs_fp32"] <= 1
    assert 0 <= result["max_logit_diff_vs_fp32"] < 0.5
    profile = result["profile"]
    assert 0 < profile["matmul_share"] < 1
    assert profile["matmul_share"] + profile["non_matmul_share"] == pytest.approx(1)
    assert [row["layer"] for row in profile["layers"]] == [0, 1, 2]


def test_onnx_export_handles_padding(tiny_artifact_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import torch

    from ltp.bench.runtimes import _ort_forward, export_onnx
    from ltp.core.artifact import load_artifact
    from ltp.core.text import PaddedBatch
    from tests.conftest import padded_batch

    artifact = load_artifact(tiny_artifact_dir)
    forward = _ort_forward(export_onnx(artifact, tmp_path / "dense.onnx"), threads=1)
    ids, mask = padded_batch()  # traced with an unpadded input; padding must still be masked
    batch = PaddedBatch(ids, mask, torch.zeros_like(ids))
    with torch.no_grad():
        ref = artifact.model.hf(input_ids=ids, attention_mask=mask, token_type_ids=batch.token_type_ids)
    torch.testing.assert_close(forward(batch), ref.logits, atol=1e-4, rtol=1e-4)
