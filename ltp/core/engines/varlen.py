"""The GPU engine: attention over packed rows with cumulative lengths (``cu_seqlens``), as
ModernBERT's unpadding does, and importance scores from a second pass.

* Context: ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention, CUDA, bf16 / fp16)
  on the packed rows, no padding; it also returns each query's log-sum-exp.
* Scores: the attention each key receives, ``sum_h sum_q exp(q.k * scale - lse_q)``, is
  recomputed from that log-sum-exp block by block of queries (``SCORE_BLOCK`` rows at a
  time), in fp32, so no (B, H, T, T) probabilities are kept: at most (B, H, SCORE_BLOCK, T).
  Only layers that prune pay for it.
* Where FlashAttention cannot run (the CPU, fp32, a torch without it), the context and the
  log-sum-exp come from padded attention instead; the score pass is the same, which is
  how its logic is tested without a GPU.

Host synchronisation: one per layer, the longest input (``max_q`` of the kernel and the
padded width of the score pass), and the keep rule's gather in pruning layers (the number
of kept rows sets the next layer's shapes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ltp.core.attention import split_heads
from ltp.core.engines.eager import PaddedEngine
from ltp.core.packing import live_from_counts, pack, unpack

SCORE_BLOCK = 64  # query rows per step of the score pass


def cumulative(counts: torch.Tensor) -> torch.Tensor:
    """Per-input token counts (B,) -> cumulative lengths (B + 1,) int32, from 0."""
    return F.pad(torch.cumsum(counts, 0, dtype=torch.int32), (1, 0))


def flash_available(rows: torch.Tensor) -> bool:
    """Whether FlashAttention's varlen kernel runs on these rows."""
    return rows.is_cuda and rows.dtype in (torch.float16, torch.bfloat16) and _has_varlen()


def _has_varlen() -> bool:
    try:
        from torch.nn.attention import varlen  # noqa: F401
    except ImportError:
        return False
    return True


def received_from_lse(q: torch.Tensor, k: torch.Tensor, lse: torch.Tensor, live: torch.Tensor,
                      block: int = SCORE_BLOCK) -> torch.Tensor:
    """The attention each key receives, summed over heads and live queries, from the
    queries' log-sum-exp: q, k (B, H, T, dh), lse (B, H, T) fp32, live (B, T) -> (B, T) fp32.
    Probabilities exist only ``block`` query rows at a time."""
    scale = q.shape[-1] ** -0.5
    keys = k.float().transpose(-1, -2)  # (B, H, dh, T)
    key_live = live[:, None, None, :]
    received = torch.zeros(live.shape, dtype=torch.float32, device=q.device)
    for start in range(0, q.shape[2], block):
        rows = slice(start, start + block)
        logits = torch.matmul(q[:, :, rows].float() * scale, keys)  # (B, H, b, T)
        probs = torch.exp(logits - lse[:, :, rows, None]).masked_fill(~key_live, 0.0)
        probs = probs * live[:, None, rows, None]  # padded queries receive and give nothing
        received += probs.sum(dim=(1, 2))
    return received


def padded_attention_lse(q, k, v, live):
    """Padded attention for where FlashAttention cannot run: context (B, H, T, dh) and each
    query's log-sum-exp (B, H, T) fp32, over live keys."""
    logits = torch.matmul(q.float() * q.shape[-1] ** -0.5, k.float().transpose(-1, -2))
    logits = logits.masked_fill(~live[:, None, None, :], float("-inf"))
    lse = torch.logsumexp(logits, dim=-1)
    ctx = torch.matmul(torch.exp(logits - lse[..., None]).to(v.dtype), v)
    return ctx, lse


class VarlenEngine(PaddedEngine):
    name = "varlen"
    precisions = ("fp32", "bf16", "fp16")

    def _attend(self, qkv, counts, need_scores):
        heads, width = self.encoder.num_heads, qkv.shape[1] // 3
        if self.model.training or not (need_scores or flash_available(qkv)):
            return super()._attend(qkv, counts, need_scores)  # training, or no kernel to win
        live = live_from_counts(counts)  # the one host sync of the layer: the longest input
        if flash_available(qkv):
            from torch.nn.attention.varlen import AuxRequest, varlen_attn

            q, k, v = qkv.view(-1, 3, heads, width // heads).unbind(1)  # (N, H, dh) each
            cu, longest = cumulative(counts), live.shape[1]
            out = varlen_attn(q, k, v, cu, cu, longest, longest,
                              return_aux=AuxRequest(lse=True) if need_scores else None)
            if not need_scores:
                return out.flatten(1), None
            ctx, lse = out[0].flatten(1), out[1]  # (N, d), (N, H)
            qp, kp, _ = split_heads(unpack(qkv, live), 3, heads)
            lse = unpack(lse.float(), live).transpose(1, 2)  # (B, H, T)
        else:
            qp, kp, vp = split_heads(unpack(qkv, live), 3, heads)  # (B, H, T, dh)
            ctx, lse = padded_attention_lse(qp, kp, vp, live)
            ctx = pack(ctx.transpose(1, 2).flatten(2), live)  # (N, d)
        return ctx, pack(received_from_lse(qp, kp, lse, live), live)
