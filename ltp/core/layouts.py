"""Token layouts of the compact forward: how the live tokens of a batch are held between
layers (packed rows or a re-padded batch), attended, gathered after a keep decision, and
read out for the head.

Shapes: B batch, H heads, T padded length, N total live tokens in the batch, d hidden size.
"""

from __future__ import annotations

import torch

from ltp.core.attention import attend, attend_inputs, split_heads
from ltp.core.scoring import received_attention


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
