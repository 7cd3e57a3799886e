"""The training losses: the head's task loss (cross-entropy, optionally class-weighted;
binary cross-entropy per label; mean squared error), the soft stage's pruning penalty,
distillation from the dense parent's logits in the same three kinds, and from its
classifier token's hidden states."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ltp.core.heads import MULTI_LABEL, REGRESSION, Head
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


MAX_POSITIVE_WEIGHT = 30.0  # a label seen a handful of times does not swamp the loss


def positive_weights(labels: list, num_labels: int) -> list[float]:
    """Per label of a multi-label head, negatives / positives in ``labels`` (tuples of label
    indices), capped at ``MAX_POSITIVE_WEIGHT``: binary cross-entropy's ``pos_weight``, so a
    rare label's positives weigh as much as its negatives (the 'balanced' of one-vs-rest)."""
    counts = [0] * num_labels
    for given in labels:
        for k in given:
            counts[k] += 1
    return [round(min(MAX_POSITIVE_WEIGHT, (len(labels) - c) / max(1, c)), 4) for c in counts]


def task_loss(logits: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """The head's loss (``ltp.core.heads.Head.loss``) with the run's class weights and
    target scale."""
    return Head(cfg.problem_type).loss(logits, y, cfg.class_weights, cfg.target_scale)


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                      problem_type: str = "single_label_classification",
                      scale: float = 1.0) -> torch.Tensor:
    """The student's distance from the teacher, for the head's kind of output.

    Single-label: KL divergence of the softened distributions; multi-label: binary
    cross-entropy of each label's softened sigmoid against the teacher's. Both are scaled
    by T^2 so that their gradients keep their size across temperatures. Regression: mean
    squared error to the teacher's values in units of ``scale`` (no temperature).
    """
    s, t = logits.float(), teacher_logits.float()
    if problem_type == REGRESSION:
        return F.mse_loss(s / scale, t / scale)
    temp = temperature
    if problem_type == MULTI_LABEL:
        return F.binary_cross_entropy_with_logits(s / temp, torch.sigmoid(t / temp)) * temp * temp
    return F.kl_div(F.log_softmax(s / temp, -1), F.softmax(t / temp, -1),
                    reduction="batchmean") * temp * temp


def hidden_distillation_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Each layer's classifier-token output (B, d) against the teacher's, as the squared
    error relative to the teacher's mean square (0 when equal, 1 for an output of zeros),
    averaged over layers: one number whatever the hidden size and the scale of the states.

    A pruned layer's classifier token attends to fewer tokens than the dense one's; this
    asks it to carry what the dense one carries, layer by layer, where the logits alone
    (two numbers on a binary head) say little."""
    if len(student) != len(teacher):
        raise ValueError(f"{len(student)} student layers against {len(teacher)} teacher layers")
    losses = [F.mse_loss(s.float(), t.float()) / t.float().pow(2).mean().clamp_min(1e-12)
              for s, t in zip(student, teacher, strict=True)]
    return torch.stack(losses).mean()
