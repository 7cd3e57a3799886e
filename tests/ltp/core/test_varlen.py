"""The GPU engine's logic on the CPU: cumulative lengths, scores from the log-sum-exp by
blocks, and padded attention's log-sum-exp; on a GPU, FlashAttention against the CPU."""

import pytest
import torch

from ltp.core.attention import attend, split_heads
from ltp.core.engines.varlen import (
    cumulative,
    flash_available,
    padded_attention_lse,
    received_from_lse,
)
from ltp.core.scoring import received_attention


def _qkv(lengths=(7, 3, 5), heads=2, dh=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    live = torch.arange(max(lengths)) < torch.tensor(lengths)[:, None]
    qkv = torch.randn(len(lengths), max(lengths), 3 * heads * dh, generator=g)
    return split_heads(qkv * live[..., None], 3, heads), live


def test_cumulative_lengths_start_at_zero_in_int32():
    cu = cumulative(torch.tensor([7, 3, 5]))
    assert cu.tolist() == [0, 7, 10, 15] and cu.dtype == torch.int32


@pytest.mark.parametrize("block", [1, 2, 64])
def test_scores_from_the_lse_equal_the_materialised_probabilities(block):
    (q, k, v), live = _qkv()
    ctx, lse = padded_attention_lse(q, k, v, live)
    reference_ctx, probs = attend(q, k, v, live, True)
    assert torch.allclose(ctx[live[:, None].expand_as(ctx[..., 0])],
                          reference_ctx[live[:, None].expand_as(ctx[..., 0])], atol=1e-5)
    expected = received_attention(probs, live)
    got = received_from_lse(q, k, lse, live, block=block)
    assert torch.allclose(got, expected, atol=1e-5)
    assert bool((got[~live] == 0).all()), "padding receives nothing"


def test_no_kernel_on_the_cpu_or_in_fp32():
    rows = torch.zeros(4, 24)
    assert not flash_available(rows) and not flash_available(rows.bfloat16())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_flash_varlen_on_a_gpu_matches_the_cpu_forward(hf_model, batch):
    from ltp.core.config import PruningConfig
    from ltp.core.model import LTPModel

    model = LTPModel(hf_model, PruningConfig(num_layers=3, final_threshold=0.05)).eval()
    with torch.no_grad():
        cpu = model(*batch)
        gpu = model.to("cuda", torch.bfloat16)
        gpu.set_engine("varlen")
        out = gpu(*(t.cuda() if t is not None else None for t in batch))
    assert (out.kept_tokens == cpu.kept_tokens).float().mean() >= 0.99
    assert torch.allclose(out.logits.float().cpu(), cpu.logits, atol=5e-2)
