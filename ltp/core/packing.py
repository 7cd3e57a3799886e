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
