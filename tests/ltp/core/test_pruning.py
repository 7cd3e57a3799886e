"""Scoring and keep rules."""

import torch

from ltp.core.attention import attend, attend_inputs, attend_padded
from ltp.core.packing import first_rows, live_from_counts, pack, unpack
from ltp.core.scoring import keep_mask, normalize_scores, received_attention, soft_mask


def importance_scores(probs, live, normalizer, norm="fixed"):
    """The model's scores from full attention probabilities (B, H, T, T)."""
    return normalize_scores(received_attention(probs, live), live, probs.shape[1], normalizer, norm)


def random_attention(lengths, heads=2, width=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    live = live_from_counts(torch.tensor(lengths))
    q, k, v = (torch.randn(len(lengths), heads, width, 4, generator=g) for _ in range(3))
    live = torch.nn.functional.pad(live, (0, width - live.shape[1]))
    return q, k, v, live


def test_mean_live_score_is_one_over_n_for_any_length():
    q, k, v, live = random_attention([6, 3, 1])
    _, probs = attend(q, k, v, live, need_probs=True)
    scores = importance_scores(probs, live, normalizer=128)
    for row, n in enumerate([6, 3, 1]):
        assert torch.isclose(scores[row, :n].mean(), torch.tensor(1 / 128))
        assert (scores[row, n:] == 0).all(), "padding receives no attention"


def test_attend_with_probs_equals_fused_kernel():
    q, k, v, live = random_attention([6, 4])
    fused, _ = attend(q, k, v, live, need_probs=False)
    explicit, probs = attend(q, k, v, live, need_probs=True)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)
    assert probs.dtype == torch.float32


def test_keep_mask_keeps_classifier_token_and_drops_padding():
    live = torch.tensor([[True, True, True, False]])
    scores = torch.tensor([[0.0, 0.5, 0.1, 0.9]])
    keep = keep_mask(scores, torch.tensor(0.2), live)
    assert keep.tolist() == [[True, True, False, False]]


def test_soft_mask_is_half_at_the_threshold():
    live = torch.tensor([[True, True, False]])
    theta = torch.tensor(0.3, requires_grad=True)
    mask = soft_mask(torch.tensor([[0.0, 0.3, 0.9]]), theta, 1e-3, live)
    assert mask.tolist() == [[1.0, 0.5, 0.0]]
    mask.sum().backward()
    assert theta.grad < 0


def test_packed_rows_keep_and_read_out_as_a_padded_batch_would():
    live = torch.tensor([[True, True, True], [True, False, False]])
    x = torch.arange(18.0).view(2, 3, 3)
    keep = torch.tensor([[True, False, True], [True, False, False]])
    new_live = live_from_counts(keep.sum(1))
    packed_rows = pack(x, live)
    assert packed_rows.shape == (4, 3)
    assert torch.equal(unpack(packed_rows, live), x * live[..., None])
    packed = packed_rows[keep[live]]
    padded = torch.stack([x[0, [0, 2]], torch.stack([x[1, 0], torch.zeros(3)])])  # kept, left-aligned
    assert torch.equal(unpack(packed, new_live), padded * new_live[..., None])
    assert torch.equal(first_rows(packed, keep.sum(1)), padded[:, 0])


def test_packed_attention_input_by_input_matches_the_padded_batch():
    g = torch.Generator().manual_seed(1)
    counts = torch.tensor([5, 1, 3])
    live = live_from_counts(counts)
    heads, width = 2, 8
    qkv = torch.randn(*live.shape, 3 * width, generator=g, requires_grad=True)
    for need_scores in (True, False):
        ref_ctx, ref_received = attend_padded(pack(qkv, live), live, heads, need_scores)
        ctx, received = attend_inputs(pack(qkv, live), counts.tolist(), heads, need_scores, 0.0)
        assert ctx.shape == (int(live.sum()), width)
        assert torch.allclose(ctx, ref_ctx, atol=1e-6)
        if need_scores:
            assert torch.allclose(received, ref_received, atol=1e-6)
            assert torch.allclose(unpack(received, live).sum(dim=1), 2.0 * counts)  # H rows of 1 each
        else:
            assert received.numel() == 0 and ref_received is None
    ctx.sum().backward()  # the hard stage trains through it
    assert qkv.grad is not None and qkv.grad[~live].abs().sum() == 0


def test_engine_names_are_the_configs():
    from ltp.core import config
    from ltp.core.engines import engine_class

    assert [engine_class(name).name for name in config.ENGINES] == list(config.ENGINES)
