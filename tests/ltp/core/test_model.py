"""The pruned forward: equal to HF without pruning, equal to the masked reference with it."""

import pytest
import torch

from ltp.core.config import ENGINES, PruningConfig
from ltp.core.model import LTPModel
from tests.conftest import padded_batch, tiny_classifier

NORMALIZER = 16


def pruning_half(num_layers: int = 3) -> PruningConfig:
    # threshold 1/N is the mean live-token score: drops the below-average tokens in every layer
    return PruningConfig(num_layers=num_layers, normalizer=NORMALIZER, final_threshold=0.0,
                         delta=[1.0 / NORMALIZER] * num_layers)


def run(model, ids, mask, mode, engine="eager"):
    if model.engine.name != engine:
        model.set_engine(engine)
    with torch.no_grad():
        return model(ids, mask, mode=mode)


@pytest.mark.parametrize("mode,engine", [("dense", "eager"), ("masked", "eager"),
                                         *((m, e) for m in ("compact", "unpruned") for e in ENGINES)])
def test_zero_thresholds_equal_hf_logits(hf_model, batch, mode, engine):
    ids, mask = batch
    model = LTPModel(hf_model, PruningConfig(num_layers=3, final_threshold=0.0)).eval()
    with torch.no_grad():
        reference = hf_model(input_ids=ids, attention_mask=mask).logits
    out = run(model, ids, mask, mode, engine)
    torch.testing.assert_close(out.logits, reference, atol=1e-4, rtol=1e-4)
    assert out.input_tokens.tolist() == mask.sum(1).tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_compact_equals_masked_reference(hf_model, batch, engine):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    masked = run(model, ids, mask, "masked")
    compact = run(model, ids, mask, "compact", engine)
    assert torch.equal(masked.kept_tokens, compact.kept_tokens)
    torch.testing.assert_close(compact.logits, masked.logits, atol=1e-5, rtol=1e-5)
    # the thresholds really pruned something before the last layer
    assert (compact.kept_tokens[:, 0] < compact.input_tokens).any()


@pytest.mark.parametrize("engine", ENGINES)
def test_median_scores_compact_equals_masked_reference(hf_model, batch, engine):
    ids, mask = batch
    pruning = pruning_half()
    pruning.score_norm = "median"
    model = LTPModel(hf_model, pruning).eval()
    masked = run(model, ids, mask, "masked")
    compact = run(model, ids, mask, "compact", engine)
    assert torch.equal(masked.kept_tokens, compact.kept_tokens)
    torch.testing.assert_close(compact.logits, masked.logits, atol=1e-5, rtol=1e-5)
    assert (compact.kept_tokens[:, 0] < compact.input_tokens).any()
    # every input's median live token (classifier token aside) scores exactly 1/N
    scores, live = masked.scores[0]
    for row in range(len(ids)):
        rest = scores[row][live[row]][1:]
        if len(rest):
            assert float(rest.median()) == pytest.approx(1.0 / NORMALIZER, rel=1e-5)


def test_median_scores_do_not_depend_on_an_inputs_scale():
    from tests.ltp.core.test_pruning import importance_scores

    probs = torch.softmax(torch.randn(2, 4, 6, 6), dim=-1)
    live = torch.ones(2, 6, dtype=torch.bool)
    fixed = importance_scores(probs, live, 16)
    median = importance_scores(probs, live, 16, "median")
    ratio = median / fixed
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio)), "one factor per input"
    with pytest.raises(ValueError, match="score norm"):
        importance_scores(probs, live, 16, "mean")


def test_kept_counts_are_sane(hf_model, batch):
    ids, mask = batch
    out = run(LTPModel(hf_model, pruning_half()).eval(), ids, mask, "compact")
    kept = out.kept_tokens
    assert (kept[:, 0] <= out.input_tokens).all()
    assert (kept[:, 1:] <= kept[:, :-1]).all(), "kept tokens never increase layer to layer"
    assert (kept >= 1).all(), "the classifier token is always kept"
    assert (kept[:, -1] == 1).all(), "after the last layer only the classifier token matters"


def test_classifier_token_survives_any_threshold(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, PruningConfig(num_layers=3, final_threshold=0.0,
                                             delta=[10.0, 10.0, 10.0])).eval()
    masked, compact = run(model, ids, mask, "masked"), run(model, ids, mask, "compact")
    assert (compact.kept_tokens == 1).all()
    torch.testing.assert_close(compact.logits, masked.logits, atol=1e-5, rtol=1e-5)


def test_padding_is_never_live(hf_model, batch):
    ids, mask = batch
    pad = hf_model.config.pad_token_id or 0
    wider_ids = torch.cat([ids, torch.full((ids.shape[0], 7), pad)], dim=1)
    wider_mask = torch.cat([mask, torch.zeros((mask.shape[0], 7), dtype=mask.dtype)], dim=1)
    model = LTPModel(hf_model, pruning_half()).eval()
    narrow, wide = run(model, ids, mask, "compact"), run(model, wider_ids, wider_mask, "compact")
    assert torch.equal(narrow.kept_tokens, wide.kept_tokens)
    assert torch.equal(narrow.input_tokens, wide.input_tokens)
    torch.testing.assert_close(narrow.logits, wide.logits, atol=1e-5, rtol=1e-5)


def test_each_example_is_pruned_independently_of_its_batch(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    together = run(model, ids, mask, "compact")
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        alone = run(model, ids[row:row + 1, :n], mask[row:row + 1, :n], "compact")
        assert torch.equal(alone.kept_tokens[0], together.kept_tokens[row])
        torch.testing.assert_close(alone.logits[0], together.logits[row], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("style", ["cumulative", "paper"])
def test_soft_mode_is_differentiable_in_the_thresholds(hf_model, batch, style):
    ids, mask = batch
    pruning = pruning_half()
    pruning.soft_style = style
    model = LTPModel(hf_model, pruning).train()
    out = model(ids, mask, mode="soft")
    assert len(out.soft_masks) == 2  # every layer but the last
    loss = out.logits.logsumexp(-1).mean() + sum(m.mean() for m in out.soft_masks)
    loss.backward()
    grad = model.threshold_delta.grad
    assert grad is not None and grad[:2].abs().sum() > 0


def test_thresholds_stay_fp32_in_bf16(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, pruning_half()).eval()
    reference = run(model, ids, mask, "compact")
    model.to(torch.bfloat16)
    assert model.threshold_delta.dtype == torch.float32
    assert model.thresholds().tolist() == pytest.approx([1.0 / NORMALIZER] * 3)
    out = run(model, ids, mask, "compact")
    assert out.logits.dtype == torch.bfloat16
    torch.testing.assert_close(out.logits.float(), reference.logits, atol=0.1, rtol=0.1)


def test_cumulative_soft_mode_with_sharp_masks_is_the_masked_reference(hf_model, batch):
    ids, mask = batch
    pruning = pruning_half()
    pruning.temperature = 1e-9  # masks become 0/1
    model = LTPModel(hf_model, pruning).eval()
    soft, masked = run(model, ids, mask, "soft"), run(model, ids, mask, "masked")
    torch.testing.assert_close(soft.logits, masked.logits, atol=1e-4, rtol=1e-4)


def test_unknown_mode_is_rejected(hf_model, batch):
    ids, mask = batch
    with pytest.raises(ValueError, match="mode"):
        LTPModel(hf_model)(ids, mask, mode="nope")


def test_single_layer_model():
    hf = tiny_classifier("bert", num_layers=1)
    ids, mask = padded_batch()
    model = LTPModel(hf).eval()
    out = run(model, ids, mask, "compact")
    with torch.no_grad():
        torch.testing.assert_close(out.logits, hf(input_ids=ids, attention_mask=mask).logits,
                                   atol=1e-4, rtol=1e-4)


def test_unpruned_flops_are_those_of_the_forward_with_zero_thresholds(hf_model, batch):
    """What the engine runs for a dense parent (thresholds 0, the last layer's classifier
    query alone) is the denominator of LTP's efficiency on that engine."""
    ids, mask = batch
    pruned = run(LTPModel(hf_model, pruning_half()).eval(), ids, mask, "compact")
    unpruned = run(LTPModel(hf_model, PruningConfig(num_layers=3, final_threshold=0.0)).eval(),
                   ids, mask, "compact")
    assert torch.equal(pruned.model_flops_unpruned, unpruned.model_flops)
    assert (pruned.model_flops < pruned.model_flops_unpruned).all()
    assert (pruned.model_flops_unpruned < pruned.model_flops_dense).all()


def test_a_copy_runs_on_its_own_weights_only(hf_model, batch):
    """The family view's embeddings and head are closures over the wrapped model's modules:
    a deep copy makes them again over its own, so training a copy leaves the original as it
    was and the copy's forward sees every change of its weights."""
    import copy

    model = LTPModel(hf_model, PruningConfig(num_layers=hf_model.config.num_hidden_layers,
                                             final_threshold=0.05)).eval()
    ids, mask = batch
    with torch.no_grad():
        before = model(ids, mask, mode="compact").logits
        clone = copy.deepcopy(model)
        for p in clone.hf.parameters():
            p.add_(0.5)
        changed = {mode: clone(ids, mask, mode=mode).logits for mode in ("dense", "compact")}
        hf_changed = clone.hf(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(model(ids, mask, mode="compact").logits, before)
    torch.testing.assert_close(changed["dense"], hf_changed, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(changed["compact"], before, atol=1e-3)
