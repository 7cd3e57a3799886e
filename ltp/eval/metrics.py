"""Metrics shared by evaluation, baselines and cards: single-label classification,
multi-label classification (and its per-label thresholds), regression."""

from __future__ import annotations

import math

import numpy as np


def classification_metrics(y_true: list[int], y_pred: list[int], labels: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision / recall / F1 / support."""
    if len(y_true) != len(y_pred) or not y_true:
        raise ValueError("need as many predictions as labels, and at least one")
    per_class, f1s = {}, []
    for k, name in enumerate(labels):
        tp = sum(t == k and p == k for t, p in zip(y_true, y_pred, strict=True))
        predicted = sum(p == k for p in y_pred)
        support = sum(t == k for t in y_true)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": round(precision, 4), "recall": round(recall, 4),
                           "f1": round(f1, 4), "support": support}
        if support:  # a class absent from the split does not count in the macro average
            f1s.append(f1)
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    return {"accuracy": correct / len(y_true), "macro_f1": sum(f1s) / len(f1s) if f1s else 0.0,
            "per_class": per_class}


def multilabel_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Micro- and macro-F1, exact-match ratio and per-label precision / recall / F1 /
    support of (N, C) 0/1 arrays. The macro average runs over labels with a positive in
    ``y_true``; micro-F1 counts every decision of every label."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    if y_true.shape != y_pred.shape or not len(y_true) or y_true.shape[1] != len(labels):
        raise ValueError("need (N, labels) predictions and targets of one shape, N >= 1")
    tp, given, support = (y_true & y_pred).sum(0), y_pred.sum(0), y_true.sum(0)
    precision = np.divide(tp, given, out=np.zeros(len(labels)), where=given > 0)
    recall = np.divide(tp, support, out=np.zeros(len(labels)), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(len(labels)), where=total > 0)
    micro_p = tp.sum() / given.sum() if given.sum() else 0.0
    micro_r = tp.sum() / support.sum() if support.sum() else 0.0
    micro_f1 = 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0
    per_label = {name: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                        "f1": round(float(f), 4), "support": int(n)}
                 for name, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)}
    present = support > 0
    return {"micro_f1": float(micro_f1), "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
            "micro_precision": float(micro_p), "micro_recall": float(micro_r),
            "exact_match": float((y_true == y_pred).all(axis=1).mean()), "per_label": per_label}


def regression_metrics(y_true, y_pred) -> dict:
    """MAE, RMSE, Spearman's and Pearson's correlation of predictions with the targets (a
    constant prediction correlates 0)."""
    from scipy.stats import pearsonr, spearmanr

    y_true, y_pred = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape or not len(y_true):
        raise ValueError("need as many predictions as targets, and at least one")
    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    return {"mae": float(np.abs(y_true - y_pred).mean()),
            "rmse": float(np.sqrt(((y_true - y_pred) ** 2).mean())),
            "spearman": 0.0 if constant else float(spearmanr(y_true, y_pred).statistic),
            "pearson": 0.0 if constant else float(pearsonr(y_true, y_pred).statistic)}


def standard_error(metric: str, score: float, n: int) -> float:
    """The sampling noise of a head's figure measured on ``n`` examples: a proportion's
    sqrt(p (1 - p) / n) for accuracy and micro-F1, and for Spearman's correlation the
    Fisher-z standard error sqrt(1.06 / (n - 3)) taken back to the correlation's scale."""
    if n < 1:
        raise ValueError("need at least one example")
    if metric == "spearman":
        return (1.0 - score ** 2) * math.sqrt(1.06 / max(n - 3, 1))
    p = min(max(score, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n)


THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
MIN_TUNING_POSITIVES = 5  # a label with fewer positives on the tuning split keeps 0.5


def decision_agreement(runs: list[list]) -> float | None:
    """How often models decide alike: over every two of ``runs`` (each one decision per
    example, in the same order: a label index or a label set), the share of examples with
    equal decisions, averaged over the pairs. None for fewer than two runs, or for values
    (a regression head's), which are never exactly equal."""
    if len(runs) < 2 or any(isinstance(d, float) for run in runs for d in run[:1]):
        return None
    shares = [sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
              for i, a in enumerate(runs) for b in runs[i + 1:]]
    return sum(shares) / len(shares)


def tune_thresholds(probabilities, y_true, default: float = 0.5) -> list[float]:
    """Per label, the threshold of ``THRESHOLD_GRID`` that maximises the label's F1 on these
    (N, C) sigmoid scores and 0/1 targets (a dev split); labels with fewer than
    ``MIN_TUNING_POSITIVES`` positives keep ``default``. Ties go to the threshold nearest
    ``default``."""
    probs, truth = np.asarray(probabilities, dtype=float), np.asarray(y_true, dtype=bool)
    grid = np.array(THRESHOLD_GRID)
    out = []
    for k in range(truth.shape[1]):
        if truth[:, k].sum() < MIN_TUNING_POSITIVES:
            out.append(default)
            continue
        given = probs[:, k][None, :] >= grid[:, None]  # (thresholds, N)
        tp = (given & truth[:, k]).sum(1)
        f1 = 2 * tp / np.maximum(given.sum(1) + truth[:, k].sum(), 1)
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        out.append(float(grid[best[np.argmin(np.abs(grid[best] - default))]]))
    return out
