"""The settings of one training run, shared by the loop and the losses."""

from __future__ import annotations

from dataclasses import dataclass

from ltp.core.config import SINGLE_LABEL


@dataclass
class TrainConfig:
    """The settings of one training run (a fine-tune or one LTP stage). Recipes do not write
    it: ``ltp.train.stages``'s ``FinetuneConfig`` and ``PruneConfig`` (the recipe keys) build it."""

    epochs: float = 1.0
    lr: float = 2e-5
    batch_size: int = 32
    max_length: int = 128
    weight_decay: float = 0.01
    warmup: float = 0.06  # fraction of steps with a linear warm-up
    seed: int = 0
    # total optimiser steps; None: epochs x batches per epoch
    steps: int | None = None
    # the head's problem type (ltp.core.heads): which task and distillation loss
    problem_type: str = SINGLE_LABEL
    # per-class weights of the task loss (single-label; None: unweighted)
    class_weights: list[float] | None = None
    # regression: the training targets' standard deviation, the unit of the squared error
    target_scale: float = 1.0
    # evaluate on the dev split every this many steps (0: never) and restore the best
    # checkpoint at the end; stop after ``patience`` evaluations without a gain (0: never)
    eval_every: int = 0
    patience: int = 0
    # soft stage
    lam: float = 0.05
    threshold_lr: float = 1e-3
    regularizer: str = "flops"
    # soft stage budget: penalise only the soft relative FLOPs above this (None: all of it)
    target_flops: float | None = None
    # hard stage: weight of the KL term towards the dense parent's logits (0: off)
    distill: float = 0.0
    # hard stage: weight of the classifier token's hidden states against the dense parent's,
    # every layer (ltp.train.losses.hidden_distillation_loss; 0: off), added to the loss
    distill_hidden: float = 0.0
    # soft stage: weight of ranking distillation (ltp.train.ranking: each pruning layer's
    # scores rank tokens as the dense parent's last scored layer does; 0: off), over the
    # parent's ``ranking_top`` best tokens of each input
    ranking: float = 0.0
    ranking_top: int = 20
    distill_temperature: float = 2.0
