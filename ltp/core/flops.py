"""FLOPs accounting, per example, on unpadded token counts.

Two figures:

* ``encoder`` (the LTP paper's formula): per layer with n_a tokens entering and n_f kept,
  MACs = 2 d n_a^2 + 4 d^2 n_a + 2 d d_ff n_f (attention scores and context; Q, K, V and
  output projections; feed-forward). With d_ff = 4d the last term is 8 d^2 n_f.
  Embeddings, softmax, LayerNorm and the head are left out.
* ``model`` (whole model): every matrix multiply the compact forward executes, the head
  included. Queries and the output projection run only where needed: on kept tokens for
  the output projection, and on the classifier token alone in the last layer. Element-wise
  work (softmax, LayerNorm, activation) and embedding look-ups are left out.

FLOPs = 2 x MACs. Dense counts use n_a = n_f = input tokens in every layer.
"""

from __future__ import annotations

import torch


def encoder_flops(d: int, d_ff: int, n_in: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Paper-formula FLOPs. n_in: (B,) input tokens; kept: (B, L) tokens kept after each layer."""
    n_in, kept = n_in.double(), kept.double()
    n_a = torch.cat([n_in[:, None], kept[:, :-1]], dim=1)  # (B, L) tokens entering each layer
    macs = 2 * d * n_a**2 + 4 * d * d * n_a + 2 * d * d_ff * kept
    return 2 * macs.sum(dim=1)


def model_flops(
    d: int, d_ff: int, num_labels: int, n_in: torch.Tensor, kept: torch.Tensor, dense: bool
) -> torch.Tensor:
    """Whole-model FLOPs of the forward that produced ``kept`` (dense: no pruning at all)."""
    n_in, kept = n_in.double(), kept.double()
    n_a = torch.cat([n_in[:, None], kept[:, :-1]], dim=1)  # (B, L)
    n_q = n_a.clone()
    n_f = kept
    if not dense:
        n_q[:, -1] = 1  # last layer: only the classifier token's query is needed
    macs = 2 * d * n_q * n_a + d * d * (n_q + 2 * n_a + n_f) + 2 * d * d_ff * n_f
    head = d * d + d * num_labels
    return 2 * (macs.sum(dim=1) + head)


def dense_kept(n_in: torch.Tensor, num_layers: int) -> torch.Tensor:
    """Kept counts of an unpruned forward: every input token in every layer, (B, L)."""
    return n_in[:, None].expand(-1, num_layers).clone()
