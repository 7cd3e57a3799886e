"""Ranking distillation of importance scores (ToP, Li et al., KDD 2023, written for LTP): a
pruning layer's scores should rank the tokens as the dense teacher's final layer does, so
that the tokens a threshold keeps are the ones the teacher attends to most.

For each input, every pair (i, j) of live tokens where the teacher ranks i among its ``top``
tokens and above j costs ``relu(s_j - s_i)`` in the student's scores, in units of the
input's mean score: zero when the student ranks every such pair as the teacher does,
positive otherwise. The mean, not the median: in the soft stage most tokens of a late layer
may be softly dropped and receive almost nothing, so the median can be near zero, while the
mean stays the mean attention a token receives. The classifier token is left out (it is
always kept). Pairs are averaged per input, inputs per batch.
"""

from __future__ import annotations

import torch


def ranking_loss(student: torch.Tensor, teacher: torch.Tensor, live: torch.Tensor,
                 top: int = 20) -> torch.Tensor:
    """student, teacher: (B, T) importance scores; live: (B, T) bool -> 0-d loss."""
    live = live.clone()
    live[:, 0] = False  # the classifier token is never pruned
    k = max(1, min(top, int(live.sum(dim=1).max())))
    ranked = teacher.detach().masked_fill(~live, float("-inf"))
    order = ranked.topk(k, dim=1).indices  # (B, k) the teacher's best first
    chosen = torch.gather(live, 1, order)  # (B, k) short inputs have fewer than k
    scale = _mean(student.detach(), live).clamp_min(1e-12)[:, None]  # (B, 1)
    s = student / scale
    s_top = torch.gather(s, 1, order)  # (B, k)
    t_top = torch.gather(teacher.detach(), 1, order)
    # pair (a top token i, any live token j the teacher ranks below it)
    below = (teacher.detach()[:, None, :] < t_top[:, :, None]) & live[:, None, :] & chosen[:, :, None]
    cost = torch.relu(s[:, None, :] - s_top[:, :, None]) * below  # (B, k, T)
    pairs = below.sum(dim=(1, 2)).clamp_min(1)
    return (cost.sum(dim=(1, 2)) / pairs).mean()


def _mean(scores: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """Each input's mean score over its live tokens (1 where none is live)."""
    count = live.sum(dim=1)
    total = scores.masked_fill(~live, 0.0).sum(dim=1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.ones_like(total))


def warmup_weight(step: int, warmup_steps: int, floor: float = 0.01) -> float:
    """ToP's schedule: the ranking term weighs 1 at the start and falls linearly to
    ``floor`` over the warm-up, where the pruning budget takes over."""
    if warmup_steps <= 0:
        return 1.0
    return max(floor, 1.0 - step / warmup_steps)
