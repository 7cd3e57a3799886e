"""Importance scores, keep rules and token layouts: small pure functions on tensors.

Shapes: B batch, H heads, T padded length, N total live tokens in the batch, d hidden size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def live_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Left-aligned live mask for per-example token counts: (B,) -> (B, max count) bool."""
    width = int(counts.max())
    return torch.arange(width, device=counts.device) < counts[:, None]


def _attend_padded(qkv: torch.Tensor, live: torch.Tensor, num_heads: int, need_scores: bool,
                   dropout_p: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Batched attention on padded (B, T, 3d) projections: context (B, T, H, dh), received."""
    ctx, probs = attend(*split_heads(qkv, 3, num_heads), live, need_scores, dropout_p)
    received = received_attention(probs, live) if need_scores else None
    return ctx.transpose(1, 2), received


class PackedLayout:
    """Live tokens of the whole batch packed into one (N, d) matrix, row-major over (B, T).

    Projections and the feed-forward run on exactly the live tokens. On the CPU attention
    runs input by input on each one's own rows: no padding, no masks, and each input's
    (H, n, n) probabilities stay in cache, where those of a padded (B, H, T, T) batch do not
    (see the README's How it works); a layer that needs no scores runs the fused kernel per
    input, so a batch of mixed lengths costs what its live tokens cost in every layer. On a
    GPU the rows are scattered into a padded (B, T, d) batch: one kernel launch per operator
    instead of one per input.
    """

    name = "packed"

    @staticmethod
    def rows(padded: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        if bool(live.all()):  # no padding: the packed rows are a view
            return padded.flatten(0, 1)
        return padded[live]  # (N, d)

    @staticmethod
    def to_padded(rows: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        if rows.shape[0] == live.numel():  # no padding: N = B * T
            return rows.view(*live.shape, *rows.shape[1:])
        out = rows.new_zeros(*live.shape, *rows.shape[1:])  # (B, T, ...)
        out[live] = rows
        return out

    @staticmethod
    def attend(qkv: torch.Tensor, live: torch.Tensor, num_heads: int, need_scores: bool,
               dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Self-attention of the live tokens: (N, 3d) fused projections -> context (N, d)
        and, when asked, the attention each token receives (B, T) fp32."""
        if qkv.device.type != "cpu":
            ctx, received = _attend_padded(PackedLayout.to_padded(qkv, live), live, num_heads,
                                           need_scores, dropout_p)
            return PackedLayout.rows(ctx, live).flatten(-2), received
        ctx, received = attend_inputs(qkv, live.sum(dim=1).tolist(), num_heads, need_scores,
                                     dropout_p)
        if not need_scores:
            return ctx, None
        out = torch.zeros(live.shape, dtype=torch.float32, device=qkv.device)
        out[live] = received
        return ctx, out

    @staticmethod
    def keep_rows(rows: torch.Tensor, live: torch.Tensor, keep: torch.Tensor, new_live) -> torch.Tensor:
        return rows[keep[live]]  # (N', ...): order is kept, so rows stay row-major

    @staticmethod
    def first_rows(rows: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        counts = live.sum(dim=1)
        starts = torch.cumsum(counts, dim=0) - counts
        return rows[starts]  # (B, d)


class PaddedLayout:
    """Every layer re-pads to the longest kept length in the batch: (B, T', d)."""

    name = "padded"

    @staticmethod
    def rows(padded: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        return padded

    @staticmethod
    def to_padded(rows: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        return rows

    @staticmethod
    def attend(qkv: torch.Tensor, live: torch.Tensor, num_heads: int, need_scores: bool,
               dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        ctx, received = _attend_padded(qkv, live, num_heads, need_scores, dropout_p)
        return ctx.flatten(-2), received

    @staticmethod
    def keep_rows(rows: torch.Tensor, live: torch.Tensor, keep: torch.Tensor, new_live) -> torch.Tensor:
        out = rows.new_zeros(*new_live.shape, *rows.shape[2:])  # (B, T', ...)
        out[new_live] = rows[keep]
        return out

    @staticmethod
    def first_rows(rows: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
        return rows[:, 0]  # (B, d)


LAYOUTS = {layout.name: layout for layout in (PackedLayout, PaddedLayout)}  # names: ltp.config
