"""Importance scores and keep rules: small pure functions on tensors.

Shapes: B batch, H heads, T padded length, N total live tokens in the batch, d hidden size.
"""

from __future__ import annotations

import torch


def received_attention(probs: torch.Tensor, query_live: torch.Tensor) -> torch.Tensor:
    """Attention each token receives, summed over heads and live query rows.

    probs: (B, H, Tq, T) fp32; query_live: (B, Tq) bool, or soft keep weights. Returns (B, T).
    """
    b, heads, tq, t = probs.shape
    weights = query_live.to(probs.dtype).repeat(1, heads).unsqueeze(1)  # (B, 1, H*Tq)
    return torch.bmm(weights, probs.reshape(b, heads * tq, t)).squeeze(1)  # (B, T)


def normalize_scores(received: torch.Tensor, query_live: torch.Tensor, heads: int,
                     normalizer: int, norm: str = "fixed") -> torch.Tensor:
    """Importance scores from the attention received, (B, T) -> (B, T) fp32.

    ``norm="fixed"`` (the paper's): divided by H * N, so the mean score of the live tokens
    is 1/N whatever the input length, and one threshold fits all lengths.

    ``norm="median"`` rescales each input's scores so that its median live token (the
    classifier token left out) scores 1/N. The special tokens take a share of the attention
    that does not shrink with the length, so with the fixed scale the content tokens of a
    short input score lower than those of a long one, and one threshold prunes short
    inputs harder; the median is not moved by a few such sinks.
    """
    if norm == "fixed":
        return received / (heads * normalizer)
    if norm != "median":
        raise ValueError(f"score norm must be 'fixed' or 'median', got {norm!r}")
    live = query_live > 0.5 if query_live.dtype != torch.bool else query_live.clone()
    live[:, 0] = False
    median = received.masked_fill(~live, float("nan")).nanmedian(dim=1).values
    median = torch.nan_to_num(median, nan=1.0).clamp_min(1e-12)  # inputs of [CLS] alone
    return received / (median[:, None] * normalizer)


def keep_mask(scores: torch.Tensor, threshold: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Hard rule: keep live token i iff score_i >= threshold; the classifier token always stays.

    scores: (B, T) fp32; threshold: 0-d fp32; live: (B, T) bool. Returns (B, T) bool.
    """
    keep = (scores >= threshold) & live
    keep[:, 0] = True  # position 0 is the classifier token, first in every layout
    return keep


def topk_mask(scores: torch.Tensor, live: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Keep the ``keep[b]`` best-scoring live tokens of each row, the classifier token first.

    scores: (B, T) fp32; live: (B, T) bool; keep: (B,) counts. Returns (B, T) bool.
    """
    ranked = scores.masked_fill(~live, float("-inf"))
    ranked[:, 0] = float("inf")
    rank = ranked.argsort(dim=1, descending=True).argsort(dim=1)  # (B, T) 0 = best
    return (rank < keep[:, None]) & live


def soft_mask(
    scores: torch.Tensor, threshold: torch.Tensor, temperature: float, live: torch.Tensor
) -> torch.Tensor:
    """Differentiable keep mask sigmoid((score - theta) / T), 0 on padding, 1 on the classifier token."""
    mask = torch.sigmoid((scores - threshold) / temperature) * live
    ones = torch.ones_like(mask[:, :1])
    return torch.cat([ones, mask[:, 1:]], dim=1)  # (B, T)
