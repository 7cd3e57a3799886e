"""Baselines every build is compared with, and the weak-model verdict.

Single-label:

* ``majority``: the most frequent training label, predicted for every input.
* ``tfidf``: TF-IDF of word unigrams and bigrams + logistic regression with balanced class
  weights (scikit-learn); the inverse regularisation strength C is picked on the dev split
  (macro-F1), so the baseline is as strong as a quick honest attempt gets.

Multi-label: ``majority`` gives every input the most frequent training label; ``tfidf`` is
the same features + one-vs-rest logistic regression, its per-label thresholds tuned on dev
as the model's are, C picked on dev (micro-F1). Regression: ``majority`` predicts the
training mean; ``tfidf`` is the same features + ridge regression, alpha picked on dev
(Spearman).

A transformer that does not clearly beat these is not worth serving: ``weak_model`` says so
and why.
"""

from __future__ import annotations

import statistics
from collections import Counter

import numpy as np

from ltp.core.heads import HEADLINE_METRIC, MULTI_LABEL, REGRESSION, targets
from ltp.data.datasets import DatasetSplits, Example
from ltp.eval.metrics import (
    classification_metrics,
    multilabel_metrics,
    regression_metrics,
    tune_thresholds,
)

TFIDF_C = (0.3, 1.0, 3.0, 10.0, 30.0)
RIDGE_ALPHA = (0.3, 1.0, 3.0, 10.0)
WEAK_MARGIN = 0.02  # dense within this of the majority baseline's figure counts as weak


def _texts(examples: list[Example]) -> list[str]:
    return [e.text if e.text_pair is None else f"{e.text} || {e.text_pair}" for e in examples]


def _scored(metrics: dict, problem_type: str) -> dict:
    metric = HEADLINE_METRIC[problem_type]
    return metrics | {"metric": metric, "score": metrics[metric]}


def _truth(data: DatasetSplits, examples: list[Example]) -> np.ndarray:
    return targets(data.problem_type, [e.label for e in examples], len(data.labels)).numpy()


def _metrics(data: DatasetSplits, examples: list[Example], predicted) -> dict:
    """The head's metrics of ``predicted`` (label indices, (N, C) 0/1, or values)."""
    truth = _truth(data, examples)
    if data.problem_type == MULTI_LABEL:
        out = multilabel_metrics(truth, predicted, data.labels)
    elif data.problem_type == REGRESSION:
        out = regression_metrics(truth, predicted)
    else:
        out = classification_metrics(truth.tolist(), list(predicted), data.labels)
    return _scored(out, data.problem_type)


def majority_baseline(data: DatasetSplits, split: str = "test") -> dict:
    """The most frequent training label for every input (regression: the training mean)."""
    examples = data.split(split)
    if data.problem_type == REGRESSION:
        mean = statistics.fmean(e.label for e in data.train)
        return _metrics(data, examples, [mean] * len(examples)) | {"label": f"mean {mean:.4g}"}
    if data.problem_type == MULTI_LABEL:
        counts = Counter(k for e in data.train for k in e.label)
    else:
        counts = Counter(e.label for e in data.train)
    top = max(sorted(counts), key=lambda k: counts[k])
    if data.problem_type == MULTI_LABEL:
        predicted = np.zeros((len(examples), len(data.labels)), dtype=bool)
        predicted[:, top] = True
    else:
        predicted = [top] * len(examples)
    return _metrics(data, examples, predicted) | {"label": data.labels[top]}


def _fit_linear(data: DatasetSplits, x_train, strength: float):
    """The linear model of the data's problem type at one regularisation strength."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    y_train = _truth(data, data.train)
    if data.problem_type == REGRESSION:
        return Ridge(alpha=strength).fit(x_train, y_train.ravel())
    if data.problem_type == MULTI_LABEL:
        keep = y_train.any(0) & ~y_train.all(0)  # a label never or always given: constant
        model = OneVsRestClassifier(LogisticRegression(C=strength, max_iter=2000))
        return (model.fit(x_train, y_train[:, keep]), keep)
    return LogisticRegression(C=strength, class_weight="balanced", max_iter=2000).fit(
        x_train, y_train)


def _predict(data: DatasetSplits, model, x, thresholds=None):
    if data.problem_type == REGRESSION:
        return model.predict(x)
    if data.problem_type == MULTI_LABEL:
        fitted, keep = model
        probs = np.zeros((x.shape[0], len(data.labels)))
        probs[:, ~keep] = _truth(data, data.train)[:1, ~keep]  # the constant labels
        probs[:, keep] = fitted.predict_proba(x)
        return probs if thresholds is None else probs >= np.asarray(thresholds)
    return model.predict(x).tolist()


def tfidf_baseline(data: DatasetSplits, split: str = "test") -> dict:
    """TF-IDF (1-2 grams, sublinear tf) + the linear model of the problem type (logistic
    regression, one-vs-rest, ridge), its regularisation (and multi-label thresholds) chosen
    on dev."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform(_texts(data.train))
    x_dev = vectorizer.transform(_texts(data.dev))
    strengths = RIDGE_ALPHA if data.problem_type == REGRESSION else TFIDF_C
    best = None
    for strength in strengths:
        model = _fit_linear(data, x_train, strength)
        thresholds = None
        if data.problem_type == MULTI_LABEL:
            thresholds = tune_thresholds(_predict(data, model, x_dev), _truth(data, data.dev))
        dev = _metrics(data, data.dev, _predict(data, model, x_dev, thresholds))
        tie = dev["macro_f1"] if "macro_f1" in dev else -dev["mae"]
        if best is None or (dev["score"], tie) > best[0]:
            best = ((dev["score"], tie), dev, strength, model, thresholds)
    _, dev, strength, model, thresholds = best
    examples = data.split(split)
    out = _metrics(data, examples, _predict(data, model, vectorizer.transform(_texts(examples)),
                                            thresholds))
    name = "alpha" if data.problem_type == REGRESSION else "C"
    return out | {name: strength, "dev_score": dev["score"]}


def baselines(data: DatasetSplits, split: str = "test") -> dict:
    return {"split": split, "majority": majority_baseline(data, split),
            "tfidf": tfidf_baseline(data, split)}


def _headline(metrics: dict) -> float:
    """The headline figure (``score``; figures written before heads: ``accuracy``)."""
    return metrics.get("score", metrics.get("accuracy"))


def weak_model(dense: dict, base: dict, hints: list[str] | None = None) -> list[str]:
    """Why a dense model is not clearly better than the baselines (empty list: it is).

    ``dense`` and ``base`` hold test figures (``evaluate`` + ``baselines``), compared on the
    head's headline figure (accuracy, micro-F1, Spearman); ``hints`` are likely causes found
    by the caller (too few steps, truncation, rare labels).
    """
    majority, tfidf = _headline(base["majority"]), _headline(base["tfidf"])
    metric = dense.get("metric", "accuracy")
    score = _headline(dense)
    reasons = []
    if score < majority + WEAK_MARGIN:
        reasons.append(f"dense test {metric} {100 * score:.1f} is within "
                       f"{100 * WEAK_MARGIN:.0f} points of always answering "
                       f"{base['majority']['label']!r} ({100 * majority:.1f})")
    if score < tfidf:
        reasons.append(f"dense test {metric} {100 * score:.1f} is below the TF-IDF "
                       f"baseline ({100 * tfidf:.1f})")
    if not reasons:
        return []
    predicted = [name for name, m in dense.get("per_class", {}).items() if m["recall"] == 0]
    causes = list(hints or [])
    if predicted:
        causes.append(f"the model never predicts {predicted}: class weighting or more steps "
                      "may help")
    if tfidf < majority + WEAK_MARGIN:
        causes.append("the TF-IDF baseline cannot beat the majority class either: the labels may "
                      "not follow from the texts (wrong column, shuffled or noisy labels)")
    causes.append("too few optimiser steps or too high / low a learning rate for this data size")
    return reasons + [f"likely cause: {c}" for c in causes]
