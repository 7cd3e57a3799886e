"""Artifact save/load round trip."""

import json

import pytest
import torch

from ltp.core.artifact import ArtifactError, load_artifact, save_artifact
from ltp.core.text import encode, pad_batch

TEXTS = ["good film", "the plot was not fun and very dull but the movie is great", "awful"]


def forward(artifact):
    batch = pad_batch(encode(artifact.tokenizer, TEXTS, max_length=32), artifact.tokenizer.pad_token_id)
    with torch.no_grad():
        return artifact.model(batch.input_ids, batch.attention_mask, batch.token_type_ids)


def test_round_trip_gives_identical_outputs(tiny_artifact_dir, tmp_path):
    first = load_artifact(tiny_artifact_dir)
    again = load_artifact(save_artifact(first, tmp_path / "copy"))
    a, b = forward(first), forward(again)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.kept_tokens, b.kept_tokens)
    assert again.meta.labels == ["neg", "pos"]
    assert again.model.thresholds().tolist() == first.model.thresholds().tolist()


def test_ltp_json_holds_everything_to_rebuild(tiny_artifact_dir):
    meta = json.loads((tiny_artifact_dir / "ltp.json").read_text())
    assert meta["format_version"] == 1
    assert meta["family"] == "bert"
    assert meta["labels"] == ["neg", "pos"]
    pruning = meta["pruning"]
    for key in ("normalizer", "final_threshold", "temperature", "delta", "base", "thresholds"):
        assert key in pruning
    assert pruning["normalizer"] == 16
    assert (tiny_artifact_dir / "model.safetensors").is_file()
    assert (tiny_artifact_dir / "config.json").is_file()


def test_learned_deltas_survive_save(tiny_artifact_dir, tmp_path):
    artifact = load_artifact(tiny_artifact_dir)
    with torch.no_grad():
        artifact.model.threshold_delta.copy_(torch.tensor([0.01, -0.002, 0.003]))
    reloaded = load_artifact(save_artifact(artifact, tmp_path / "trained"))
    assert reloaded.model.threshold_delta.tolist() == artifact.model.threshold_delta.tolist()


def test_bf16_load(tiny_artifact_dir):
    artifact = load_artifact(tiny_artifact_dir, dtype="bf16")
    assert artifact.model.hf.dtype == torch.bfloat16
    assert artifact.model.thresholds().dtype == torch.float32
    out = forward(artifact)
    ref = forward(load_artifact(tiny_artifact_dir))
    torch.testing.assert_close(out.logits.float(), ref.logits, atol=0.1, rtol=0.1)


def test_missing_or_bad_artifact_is_a_clear_error(tmp_path, tiny_artifact_dir):
    with pytest.raises(ArtifactError, match="ltp.json"):
        load_artifact(tmp_path)
    with pytest.raises(ArtifactError, match="dtype"):
        load_artifact(tiny_artifact_dir, dtype="int3")
    meta = json.loads((tiny_artifact_dir / "ltp.json").read_text())
    meta["format_version"] = 99
    (tiny_artifact_dir / "ltp.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="format_version"):
        load_artifact(tiny_artifact_dir)


def test_a_saved_artifact_is_readable_by_every_user(tiny_artifact_dir, tmp_path):
    import os
    import stat

    old = os.umask(0o077)  # a writer that makes private files
    try:
        out = save_artifact(load_artifact(tiny_artifact_dir), tmp_path / "shared")
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    for path in [out, *files]:
        assert path.stat().st_mode & stat.S_IROTH, f"{path} is not readable by others"
