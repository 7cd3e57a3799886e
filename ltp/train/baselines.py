"""Baselines every build is compared with, and the weak-model verdict.

* ``majority``: the most frequent training label, predicted for every input.
* ``tfidf``: TF-IDF of word unigrams and bigrams + logistic regression with balanced class
  weights (scikit-learn); the inverse regularisation strength C is picked on the dev split
  (macro-F1), so the baseline is as strong as a quick honest attempt gets.

A transformer that does not clearly beat these is not worth serving: ``weak_model`` says so
and why.
"""

from __future__ import annotations

from collections import Counter

from ltp.data.datasets import DatasetSplits, Example
from ltp.eval.metrics import classification_metrics

TFIDF_C = (0.3, 1.0, 3.0, 10.0, 30.0)
WEAK_MARGIN = 0.02  # dense within this of the majority class's accuracy counts as weak


def _texts(examples: list[Example]) -> list[str]:
    return [e.text if e.text_pair is None else f"{e.text} || {e.text_pair}" for e in examples]


def majority_baseline(data: DatasetSplits, split: str = "test") -> dict:
    counts = Counter(e.label for e in data.train)
    top = max(sorted(counts), key=lambda k: counts[k])
    examples = data.split(split)
    out = classification_metrics([e.label for e in examples], [top] * len(examples), data.labels)
    return out | {"label": data.labels[top]}


def tfidf_baseline(data: DatasetSplits, split: str = "test") -> dict:
    """TF-IDF (1-2 grams, sublinear tf) + balanced logistic regression, C chosen on dev."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform(_texts(data.train))
    y_train = [e.label for e in data.train]
    x_dev = vectorizer.transform(_texts(data.dev))
    y_dev = [e.label for e in data.dev]
    best = None
    for c in TFIDF_C:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x_train, y_train)
        dev = classification_metrics(y_dev, model.predict(x_dev).tolist(), data.labels)
        if best is None or dev["macro_f1"] > best[0]["macro_f1"]:
            best = (dev, c, model)
    dev, c, model = best
    examples = data.split(split)
    pred = model.predict(vectorizer.transform(_texts(examples))).tolist()
    out = classification_metrics([e.label for e in examples], pred, data.labels)
    return out | {"C": c, "dev_accuracy": dev["accuracy"], "dev_macro_f1": dev["macro_f1"]}


def baselines(data: DatasetSplits, split: str = "test") -> dict:
    return {"split": split, "majority": majority_baseline(data, split),
            "tfidf": tfidf_baseline(data, split)}


def weak_model(dense: dict, base: dict, hints: list[str] | None = None) -> list[str]:
    """Why a dense model is not clearly better than the baselines (empty list: it is).

    ``dense`` and ``base`` hold test figures (``classification_metrics`` + ``baselines``);
    ``hints`` are likely causes found by the caller (too few steps, truncation, rare labels).
    """
    majority, tfidf = base["majority"], base["tfidf"]
    reasons = []
    if dense["accuracy"] < majority["accuracy"] + WEAK_MARGIN:
        reasons.append(f"dense test accuracy {100 * dense['accuracy']:.1f} is within "
                       f"{100 * WEAK_MARGIN:.0f} points of always answering "
                       f"{majority['label']!r} ({100 * majority['accuracy']:.1f})")
    if dense["accuracy"] < tfidf["accuracy"]:
        reasons.append(f"dense test accuracy {100 * dense['accuracy']:.1f} is below the TF-IDF + "
                       f"logistic regression baseline ({100 * tfidf['accuracy']:.1f})")
    if not reasons:
        return []
    predicted = [name for name, m in dense.get("per_class", {}).items() if m["recall"] == 0]
    causes = list(hints or [])
    if predicted:
        causes.append(f"the model never predicts {predicted}: class weighting or more steps "
                      "may help")
    if tfidf["accuracy"] < majority["accuracy"] + WEAK_MARGIN:
        causes.append("the TF-IDF baseline cannot beat the majority class either: the labels may "
                      "not follow from the texts (wrong column, shuffled or noisy labels)")
    causes.append("too few optimiser steps or too high / low a learning rate for this data size")
    return reasons + [f"likely cause: {c}" for c in causes]
