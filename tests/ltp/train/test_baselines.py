"""Classification metrics, the majority and TF-IDF baselines, the weak-model verdict."""

import pytest

from ltp.data.datasets import load_dataset
from ltp.eval.metrics import classification_metrics
from ltp.train.baselines import baselines, weak_model


def test_metrics_and_weak_verdict():
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.6667)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    base = {"majority": {"accuracy": 0.65, "label": "a"}, "tfidf": {"accuracy": 0.747}}
    assert weak_model({"accuracy": 0.80}, base) == []
    reasons = weak_model({"accuracy": 0.654, "per_class": {"a": {"recall": 1.0}, "b": {"recall": 0.0}}},
                         base, ["only 51 optimiser steps"])
    assert "within 2 points of always answering 'a'" in reasons[0]
    assert "below the TF-IDF" in reasons[1]
    assert "likely cause: only 51 optimiser steps" in reasons
    assert any("never predicts ['b']" in r for r in reasons)


def test_baselines_on_a_learnable_csv(tiny_csv):
    base = baselines(load_dataset(str(tiny_csv)))
    assert base["split"] == "test"
    assert base["majority"]["accuracy"] == pytest.approx(0.5) and base["majority"]["label"] == "neg"
    assert base["majority"]["per_class"]["pos"]["recall"] == 0.0
    assert base["tfidf"]["accuracy"] > base["majority"]["accuracy"]
    assert base["tfidf"]["C"] in (0.3, 1.0, 3.0, 10.0, 30.0)
