"""Multi-label and regression metrics, per-label threshold tuning, and the baselines of each kind."""

import numpy as np
import pytest

from ltp.data.datasets import Columns, load_dataset
from ltp.eval.metrics import (
    decision_agreement,
    multilabel_metrics,
    regression_metrics,
    tune_thresholds,
)
from ltp.train.baselines import baselines, weak_model


def test_multilabel_metrics_micro_macro_and_per_label():
    truth = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=bool)
    m = multilabel_metrics(truth, pred, ["a", "b", "c"])
    # tp 3 (a twice, b once), fp 1 (c), fn 2 (b, c): micro P 3/4, R 3/5
    assert m["micro_precision"] == pytest.approx(0.75) and m["micro_recall"] == pytest.approx(0.6)
    assert m["micro_f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert m["per_label"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    assert m["exact_match"] == pytest.approx(0.25)  # only the all-zero row is exact


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.5, 1.9, 3.5, 3.0])
    assert m["mae"] == pytest.approx((0.5 + 0.1 + 0.5 + 1.0) / 4)
    assert m["spearman"] == pytest.approx(0.8)  # one pair out of order
    assert regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])["spearman"] == 0.0


def test_thresholds_tuned_per_label():
    rng = np.random.default_rng(0)
    truth = rng.random((200, 2)) < 0.3
    # label 0 scores well but low (its positives near 0.3); label 1 has too few positives
    probs = np.where(truth, 0.3, 0.1) + rng.normal(0, 0.02, truth.shape)
    truth[:, 1] = False
    truth[:3, 1] = True
    thresholds = tune_thresholds(probs, truth)
    assert 0.1 < thresholds[0] <= 0.3
    assert thresholds[1] == 0.5  # fewer than 5 positives: the default stays
    tuned = multilabel_metrics(truth[:, :1], probs[:, :1] >= thresholds[0], ["a"])["micro_f1"]
    assert tuned > multilabel_metrics(truth[:, :1], probs[:, :1] >= 0.5, ["a"])["micro_f1"]


def write_tagged(path, n=120):
    """Texts whose words say their tags: 'funny' -> comedy, 'sad' -> drama, 'gun' -> war."""
    import random

    rng = random.Random(0)
    filler = ["the", "a", "film", "story", "of", "and", "it", "was", "very", "long"]
    rows = ["text,label"]
    for i in range(n):
        tags = [t for t, on in (("comedy", i % 2), ("drama", i % 3 == 0), ("war", i % 4 == 1)) if on]
        cue = {"comedy": "funny", "drama": "sad", "war": "gun"}
        words = [rng.choice(filler) for _ in range(6)] + [cue[t] for t in tags]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{'|'.join(tags)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_multi_label_and_regression_baselines(tmp_path):
    data = load_dataset(str(write_tagged(tmp_path / "tags.csv")), Columns(delimiter="|"))
    base = baselines(data)
    assert base["majority"]["label"] == "comedy" and base["majority"]["metric"] == "micro_f1"
    assert base["tfidf"]["score"] > base["majority"]["score"]
    assert base["tfidf"]["score"] == base["tfidf"]["micro_f1"] > 0.8  # the cues are words
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("text,label\n" + "".join(
        f"{'great ' * (i % 5)}film {i},{i % 5}\n" for i in range(100)))
    base = baselines(load_dataset(str(ratings), problem_type="regression"))
    assert base["majority"]["spearman"] == 0.0 and base["majority"]["label"].startswith("mean")
    assert base["tfidf"]["spearman"] > 0.9 and base["tfidf"]["alpha"] in (0.3, 1.0, 3.0, 10.0)
    reasons = weak_model({"metric": "spearman", "score": 0.5, "spearman": 0.5}, base)
    assert any("dense test spearman 50.0 is below the TF-IDF" in r for r in reasons)


def test_standard_error_of_a_dev_figure():
    from ltp.eval.metrics import standard_error

    # 60 dev examples at 80% accuracy: sqrt(0.8 * 0.2 / 60) = 5.2 points
    assert standard_error("accuracy", 0.80, 60) == pytest.approx(0.05164, abs=1e-5)
    assert standard_error("micro_f1", 0.80, 6000) == pytest.approx(0.005164, abs=1e-6)
    assert standard_error("accuracy", 1.0, 60) == 0.0  # no spread at the bound
    # Spearman 0.5 on 109 examples: (1 - 0.25) * sqrt(1.06 / 106) = 0.075
    assert standard_error("spearman", 0.5, 109) == pytest.approx(0.075)
    with pytest.raises(ValueError):
        standard_error("accuracy", 0.5, 0)


def test_decision_agreement_averages_every_pair_of_runs():
    a, b, c = [0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]
    # a-b agree on 3 of 4, a-c on 2, b-c on 3
    assert decision_agreement([a, b, c]) == pytest.approx((0.75 + 0.5 + 0.75) / 3)
    assert decision_agreement([a, a]) == 1.0
    assert decision_agreement([[[0, 1], [1]], [[0, 1], [0]]]) == 0.5  # label sets, whole
    assert decision_agreement([a]) is None
    assert decision_agreement([[0.5, 1.0], [0.5, 1.0]]) is None  # values are not decisions
