"""Classification metrics shared by evaluation, baselines and cards."""

from __future__ import annotations


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
