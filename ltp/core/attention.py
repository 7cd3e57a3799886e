"""Attention kernels of the pruned forward: fused projections split into heads, attention
over live keys (with fp32 probabilities when the importance scores need them), and
attention input by input on packed rows.

Shapes: B batch, H heads, T padded length, N total live tokens in the batch, d hidden size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ltp.core.packing import pack, unpack
from ltp.core.scoring import received_attention


def split_heads(x: torch.Tensor, parts: int, num_heads: int) -> tuple[torch.Tensor, ...]:
    """(B, T, parts * d) fused projections -> ``parts`` views of shape (B, H, T, d/H)."""
    b, t, width = x.shape
    heads = x.view(b, t, parts, num_heads, width // (parts * num_heads))
    return tuple(heads.permute(2, 0, 3, 1, 4).unbind(0))


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_live: torch.Tensor,
    need_probs: bool,
    dropout_p: float = 0.0,
    key_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention over live keys.

    q: (B, H, Tq, dh); k, v: (B, H, T, dh); key_live: (B, T) bool; key_weight: optional
    (B, T) soft keep probabilities, applied as a log-bias (a key of weight w counts w times).
    Returns the context (B, H, Tq, dh) and, when asked, fp32 probabilities (B, H, Tq, T).
    Without probabilities the fused kernel runs; with them, softmax is taken in fp32.
    """
    padded = not bool(key_live.all())
    bias = None
    if key_weight is not None:
        bias = key_weight.clamp_min(1e-30).log().masked_fill(~key_live, float("-inf"))
        bias = bias.to(q.dtype)[:, None, None, :]  # (B, 1, 1, T)
    if not need_probs:
        mask = bias if bias is not None else key_live[:, None, None, :] if padded else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p), None
    logits = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))  # (B, H, Tq, T)
    if bias is not None:
        logits = logits + bias
    elif padded:
        logits.masked_fill_(~key_live[:, None, None, :], float("-inf"))
    probs = logits.float().softmax(dim=-1)
    weights = F.dropout(probs, p=dropout_p) if dropout_p > 0 else probs
    return torch.matmul(weights.to(v.dtype), v), probs  # (B, H, Tq, dh)


def attend_one(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of one input, every token live: q, k, v (H, n, dh) -> context (H, n, dh)
    and fp32 probabilities (H, n, n)."""
    probs = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2)).float().softmax(dim=-1)
    weights = F.dropout(probs, p=dropout_p) if dropout_p > 0 else probs
    return torch.matmul(weights.to(v.dtype), v), probs


def attend_inputs(qkv: torch.Tensor, counts: list[int], num_heads: int, need_scores: bool,
                  dropout_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention input by input on packed rows: (N, 3d) fused projections of inputs of
    ``counts`` tokens each -> context (N, d) and the attention each token receives (N,) fp32
    (empty when ``need_scores`` is false: the fused kernel runs instead)."""
    width = qkv.shape[1] // 3
    ctxs: list[torch.Tensor] = []
    received: list[torch.Tensor] = []
    for segment, n in zip(qkv.split(counts), counts, strict=True):
        q, k, v = segment.view(n, 3, num_heads, width // num_heads).permute(1, 2, 0, 3).unbind(0)
        if need_scores:
            ctx, probs = attend_one(q, k, v, dropout_p)  # (H, n, dh), (H, n, n)
            received.append(probs.sum(dim=(0, 1)))  # (n,)
        else:  # the fused kernel on this input alone: no padding, no mask
            ctx = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        ctxs.append(ctx.transpose(0, 1).reshape(n, width))
    scores = torch.cat(received) if need_scores else qkv.new_empty(0, dtype=torch.float32)
    return torch.cat(ctxs), scores


def attend_padded(qkv: torch.Tensor, live: torch.Tensor, num_heads: int, need_scores: bool,
                  dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Self-attention of packed rows on the batch padded to its longest input: (N, 3d) fused
    projections -> context (N, d) and, when asked, the attention each token receives (N,)
    fp32. One kernel launch per operator, whatever the batch size (the GPU's way)."""
    ctx, probs = attend(*split_heads(unpack(qkv, live), 3, num_heads), live, need_scores, dropout_p)
    ctx = pack(ctx.transpose(1, 2).flatten(2), live)  # (N, d)
    return ctx, pack(received_attention(probs, live), live) if need_scores else None


def attend_first(q: torch.Tensor, kv: torch.Tensor, live: torch.Tensor, num_heads: int,
                 dropout_p: float = 0.0) -> torch.Tensor:
    """Attention of each input's classifier token over its own tokens: queries (B, d) and
    packed keys and values (N, 2d) -> context (B, d)."""
    k, v = split_heads(unpack(kv, live), 2, num_heads)  # (B, H, T, dh)
    (q,) = split_heads(q.unsqueeze(1), 1, num_heads)  # (B, H, 1, dh)
    ctx, _ = attend(q, k, v, live, False, dropout_p)
    return ctx.flatten(1)  # (B, d)
