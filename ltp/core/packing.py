"""Packed rows: the live tokens of a right-padded batch as one (N, d) matrix, row-major over
(B, T), so that projections and feed-forwards run on exactly the live tokens. Each input's
rows are contiguous and its classifier token comes first.

Shapes: B batch, T padded length, N total live tokens in the batch, d hidden size.
"""

from __future__ import annotations

import torch


def pack(padded: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """(B, T, ...) -> (N, ...) live rows; a view when nothing is padding."""
    if bool(live.all()):
        return padded.flatten(0, 1)
    return padded[live]


def unpack(rows: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """(N, ...) live rows -> (B, T, ...), zeros at the padding."""
    if rows.shape[0] == live.numel():  # no padding: N = B * T
        return rows.view(*live.shape, *rows.shape[1:])
    out = rows.new_zeros(*live.shape, *rows.shape[1:])
    out[live] = rows
    return out


def live_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Left-aligned live mask for per-input token counts: (B,) -> (B, max count) bool."""
    width = int(counts.max())
    return torch.arange(width, device=counts.device) < counts[:, None]


def first_rows(rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Each input's first row (its classifier token): (N, d) -> (B, d)."""
    starts = torch.cumsum(counts, dim=0) - counts
    return rows[starts]


def gather_kept(keep: torch.Tensor, live: torch.Tensor, *packed: torch.Tensor,
                fuse_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """The kept rows of packed tensors: ``keep`` and ``live`` (B, T), each of ``packed``
    (N, ...) -> its kept rows (N', ...), then the counts (B,) kept per input.

    With ``fuse_weights`` (B, T) (importance scores), the rows an input drops are not lost:
    their mean weighted by score becomes one more row at the end of its kept rows (EViT's
    fused token), one for each input that drops anything."""
    kept = keep[live]
    if fuse_weights is None:
        return (*(x[kept] for x in packed), keep.sum(dim=1))
    dropped = live & ~keep
    weights = torch.where(dropped, fuse_weights, 0).clamp_min(0)  # (B, T)
    weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
    has = dropped.any(dim=1)  # (B,)
    n, b = kept.shape[0], live.shape[0]
    order = torch.full((b, live.shape[1] + 1), -1, dtype=torch.long, device=live.device)
    order[:, :-1][keep] = torch.arange(n, device=live.device)[kept]
    order[:, -1] = torch.where(has, n + torch.arange(b, device=live.device), -1)
    index = order[order >= 0]  # each input's kept rows, then its fused row
    fused = [torch.cat([x, torch.einsum("bt,bt...->b...", weights.to(x.dtype), unpack(x, live))])
             for x in packed]
    return (*(x[index] for x in fused), keep.sum(dim=1) + has.long())
