"""The classifier head's problem type: how logits become scores, decisions and a loss.

Transformers names three (``config.problem_type``), and so do we:

* ``single_label_classification``: one label per text; scores are a softmax over labels,
  the decision is the best label; cross-entropy.
* ``multi_label_classification``: any number of labels per text (toxic *and* insulting);
  one sigmoid per label, each label decided by its own threshold (0.5 unless tuned, stored
  in the artifact); binary cross-entropy per label.
* ``regression``: one number per output (a rating, a similarity); the score is the raw
  output; mean squared error.

A checkpoint without ``problem_type`` is read as transformers' own forward reads it: one
output is regression, more are single-label. An ``ltp.json`` without a ``head`` is
single-label (every artifact written before heads existed was).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ltp.core.config import MULTI_LABEL, PROBLEM_TYPES, REGRESSION, SINGLE_LABEL

__all__ = ["MULTI_LABEL", "PROBLEM_TYPES", "REGRESSION", "SINGLE_LABEL", "Head", "labels_given",
           "problem_type_of", "ranked", "targets"]
DEFAULT_THRESHOLD = 0.5
# the headline figure of each problem type (higher is better): selection, budgets, cards
HEADLINE_METRIC = {SINGLE_LABEL: "accuracy", MULTI_LABEL: "micro_f1", REGRESSION: "spearman"}


def problem_type_of(config) -> str:
    """A Hugging Face config's problem type; unset: regression for one output, else
    single-label (what transformers' ``*ForSequenceClassification`` loss assumes)."""
    given = getattr(config, "problem_type", None)
    if given:
        check_problem_type(given)
        return given
    return REGRESSION if config.num_labels == 1 else SINGLE_LABEL


def check_problem_type(problem_type: str) -> str:
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    return problem_type


@dataclass
class Head:
    """What ``ltp.json`` stores under ``head``: the problem type and, for multi-label, a
    threshold per label."""

    problem_type: str = SINGLE_LABEL
    # multi-label: the sigmoid score at or above which each label is given (None: 0.5 each)
    thresholds: list[float] | None = None

    def __post_init__(self) -> None:
        check_problem_type(self.problem_type)
        if self.thresholds is not None:
            if self.problem_type != MULTI_LABEL:
                raise ValueError("per-label thresholds belong to a multi-label head")
            if not all(0.0 < t < 1.0 for t in self.thresholds):
                raise ValueError(f"label thresholds must be in (0, 1), got {self.thresholds}")

    @property
    def multi_label(self) -> bool:
        return self.problem_type == MULTI_LABEL

    @property
    def regression(self) -> bool:
        return self.problem_type == REGRESSION

    @property
    def metric(self) -> str:
        return HEADLINE_METRIC[self.problem_type]

    def label_thresholds(self, num_labels: int) -> list[float]:
        """One threshold per label (multi-label)."""
        thresholds = self.thresholds or [DEFAULT_THRESHOLD] * num_labels
        if len(thresholds) != num_labels:
            raise ValueError(f"{len(thresholds)} label thresholds for {num_labels} labels")
        return list(thresholds)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, C) logits -> (B, C) fp32 scores: softmax, one sigmoid per label, or the values."""
        logits = logits.float()
        if self.problem_type == SINGLE_LABEL:
            return logits.softmax(-1)
        if self.problem_type == MULTI_LABEL:
            return logits.sigmoid()
        return logits

    def decide(self, logits: torch.Tensor) -> torch.Tensor:
        """The decision per input: the best label (B,) long; the labels given (B, C) bool;
        or the value (B, C) float."""
        if self.problem_type == SINGLE_LABEL:
            return logits.argmax(-1)
        if self.problem_type == MULTI_LABEL:
            limit = torch.tensor(self.label_thresholds(logits.shape[-1]), device=logits.device)
            return logits.float().sigmoid() >= limit
        return logits.float()

    def loss(self, logits: torch.Tensor, target: torch.Tensor,
             class_weights: list[float] | None = None, scale: float = 1.0) -> torch.Tensor:
        """The task loss: cross-entropy (``class_weights``: one per class), binary
        cross-entropy averaged over labels (``class_weights``: each label's positive weight),
        or mean squared error in units of ``scale`` (the training targets' standard
        deviation, so that its size does not depend on the target's)."""
        logits = logits.float()
        weight = None if class_weights is None else torch.tensor(
            class_weights, dtype=torch.float32, device=logits.device)
        if self.problem_type == SINGLE_LABEL:
            return F.cross_entropy(logits, target, weight=weight)
        if self.problem_type == MULTI_LABEL:
            return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=weight)
        return F.mse_loss(logits / scale, target.float() / scale)

    def to_dict(self) -> dict:
        out = {"problem_type": self.problem_type}
        if self.multi_label:
            out["thresholds"] = self.thresholds
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> Head:
        """A head from ``ltp.json``'s ``head``; missing (older artifacts): single-label."""
        data = data or {}
        return cls(problem_type=data.get("problem_type", SINGLE_LABEL),
                   thresholds=data.get("thresholds"))


def targets(problem_type: str, labels: list, num_labels: int) -> torch.Tensor:
    """Training targets: label indices (B,) long; a multi-hot (B, C) float from each
    example's tuple of label indices; or the values (B, C) float."""
    if problem_type == SINGLE_LABEL:
        return torch.tensor(labels, dtype=torch.long)
    if problem_type == MULTI_LABEL:
        hot = torch.zeros(len(labels), num_labels)
        for row, given in enumerate(labels):
            hot[row, list(given)] = 1.0
        return hot
    return torch.tensor(labels, dtype=torch.float32).reshape(len(labels), num_labels)


def ranked(values: list[float], labels: list[str]) -> list[tuple[float, str]]:
    """(score, label) for every label, best first (a regression output: its one value)."""
    return sorted(zip(values, labels, strict=True), key=lambda s: -s[0])


def labels_given(scores: list[float], labels: list[str], thresholds: list[float]) -> list[str]:
    """The labels whose sigmoid score reaches their threshold, best first."""
    given = [(s, label) for s, label, t in zip(scores, labels, thresholds, strict=True) if s >= t]
    return [label for _, label in sorted(given, key=lambda g: -g[0])]
