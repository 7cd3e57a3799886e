"""The training losses: the task loss (optionally class-weighted), the soft stage's pruning
penalty, and distillation from the dense parent's logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ltp.core.model import ForwardOutput
from ltp.train.config import TrainConfig

REGULARIZERS = ("flops", "uniform")


def soft_regularizer(out: ForwardOutput, kind: str, d: int, d_ff: int) -> torch.Tensor:
    """The soft stage's penalty on kept tokens.

    ``uniform`` (the paper's): sum over pruning layers of the mean soft mask.
    ``flops``: the soft expected relative FLOPs of the linear layers, from the cumulative
    masks: a token dropped early saves every later layer, so early pruning weighs more.
    Scaled by the number of layers, so that lambda means about what it means for
    ``uniform`` (whose sum also runs up to the number of layers).
    """
    live = out.live.float()
    n_in = live.sum(dim=1)  # (B,)
    masks = out.soft_masks  # per pruning layer, (B, T) cumulative keep probabilities
    if kind == "uniform":
        return sum(((m * live).sum(1) / n_in).mean() for m in masks)
    if kind != "flops":
        raise ValueError(f"regularizer must be one of {REGULARIZERS}")
    kept = [(m * live).sum(1) / n_in for m in masks]  # (B,) fraction kept after each layer
    entering = [torch.ones_like(n_in), *kept]  # fraction entering each layer
    per_token = 4 * d * d + 2 * d * d_ff  # linear MACs of one token in one layer
    cost = sum(4 * d * d * entering[i] + 2 * d * d_ff * kept[i] for i in range(len(masks)))
    cost = cost + 2 * d * d * entering[-1]  # last layer: keys and values on what entered
    return (cost / per_token).mean()  # = relative FLOPs x num_layers


def balanced_class_weights(labels: list[int], num_labels: int) -> list[float]:
    """n / (classes x n_c): every class weighs the same in the loss (scikit-learn's 'balanced')."""
    counts = [max(1, sum(y == k for y in labels)) for k in range(num_labels)]
    return [round(len(labels) / (num_labels * c), 4) for c in counts]


def task_loss(logits: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    weight = None
    if cfg.class_weights is not None:
        weight = torch.tensor(cfg.class_weights, dtype=torch.float32, device=logits.device)
    return F.cross_entropy(logits.float(), y, weight=weight)


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """KL divergence of the student's softened distribution from the teacher's, scaled by
    T^2 so that its gradients keep their size across temperatures."""
    t = temperature
    return F.kl_div(F.log_softmax(logits.float() / t, -1), F.softmax(teacher_logits.float() / t, -1),
                    reduction="batchmean") * t * t
