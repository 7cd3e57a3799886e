"""Fused tokens (``PruningConfig.fuse``): the tokens a layer drops leave as one row, their mean
weighted by score, after the input's kept rows."""

from dataclasses import replace

import torch

from ltp.core.model import LTPModel
from ltp.core.packing import gather_kept, live_from_counts
from tests.ltp.core.test_model import pruning_half, run


def test_gather_kept_appends_each_inputs_weighted_mean_of_what_it_drops():
    live = live_from_counts(torch.tensor([4, 3, 2]))
    keep = torch.tensor([[1, 0, 1, 0], [1, 1, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    scores = torch.tensor([[9.0, 1.0, 9.0, 3.0], [9.0, 1.0, 1.0, 0.0], [9.0, 2.0, 0.0, 0.0]])
    rows = torch.randn(int(live.sum()), 5)
    other = torch.randn(int(live.sum()), 2)
    plain_rows, plain_other, plain_counts = gather_kept(keep, live, rows, other)
    fused_rows, fused_other, counts = gather_kept(keep, live, rows, other, fuse_weights=scores)
    assert plain_counts.tolist() == [2, 3, 1]
    assert counts.tolist() == [3, 3, 2], "one more row for each input that drops anything"
    padded = torch.zeros(3, 4, 5)
    padded[live] = rows
    expected = [padded[0, 0], padded[0, 2], (1 * padded[0, 1] + 3 * padded[0, 3]) / 4,
                *padded[1, :3], padded[2, 0], padded[2, 1]]
    torch.testing.assert_close(fused_rows, torch.stack(expected))
    # every packed tensor is gathered alike, and without fusion only the kept rows remain
    assert fused_other.shape == (8, 2)
    torch.testing.assert_close(plain_rows, fused_rows[[0, 1, 3, 4, 5, 6]])
    torch.testing.assert_close(plain_other, fused_other[[0, 1, 3, 4, 5, 6]])


def test_fused_rows_carry_gradient_to_what_was_dropped():
    live = live_from_counts(torch.tensor([3]))
    keep = torch.tensor([[True, False, False]])
    rows = torch.randn(3, 4, requires_grad=True)
    fused, counts = gather_kept(keep, live, rows, fuse_weights=torch.tensor([[5.0, 1.0, 1.0]]))
    fused.sum().backward()
    assert counts.tolist() == [2]
    assert (rows.grad[1:] != 0).all(), "the dropped rows reach the loss through the fused row"


def test_fusion_changes_nothing_where_nothing_is_dropped(hf_model, batch):
    ids, mask = batch
    zero = pruning_half()
    zero.delta = [0.0] * zero.num_layers
    plain = run(LTPModel(hf_model, zero).eval(), ids, mask, "compact")
    fused = run(LTPModel(hf_model, replace(zero, fuse=True)).eval(), ids, mask, "compact")
    assert torch.equal(plain.kept_tokens, fused.kept_tokens)
    torch.testing.assert_close(plain.logits, fused.logits)


def test_fused_compact_forward_prunes_each_input_as_if_alone(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, replace(pruning_half(), fuse=True)).eval()
    plain = run(LTPModel(hf_model, pruning_half()).eval(), ids, mask, "compact")
    together = run(model, ids, mask, "compact")
    dropped = plain.kept_tokens[:, 0] < plain.input_tokens
    assert dropped.any()
    # the first pruning layer keeps what it keeps without fusion, and one fused token more
    assert torch.equal(together.kept_tokens[:, 0], plain.kept_tokens[:, 0] + dropped.long())
    assert not torch.allclose(together.logits, plain.logits), "the fused tokens are read"
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        alone = run(model, ids[row:row + 1, :n], mask[row:row + 1, :n], "compact")
        assert torch.equal(alone.kept_tokens[0], together.kept_tokens[row])
        torch.testing.assert_close(alone.logits[0], together.logits[row], atol=1e-5, rtol=1e-5)


def test_tracked_tokens_count_the_input_tokens_only(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, replace(pruning_half(), fuse=True)).eval()
    with torch.no_grad():
        out = model(ids, mask, track_tokens=True)
        plain = LTPModel(hf_model, pruning_half()).eval()(ids, mask, track_tokens=True)
    assert out.token_layers.shape == mask.shape
    assert int(out.token_layers[~mask.bool()].sum()) == 0, "padding is never counted"
    # after the first layer: the input tokens it kept, without the fused token counted
    assert torch.equal((out.token_layers > 0).sum(dim=1), plain.kept_tokens[:, 0])
    assert torch.equal(out.token_layers > 0, plain.token_layers > 0)


def test_fused_forward_trains(hf_model, batch):
    ids, mask = batch
    model = LTPModel(hf_model, replace(pruning_half(), fuse=True)).train()
    out = model(ids, mask, mode="compact")
    out.logits.sum().backward()
    grads = [p.grad for p in model.hf.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
