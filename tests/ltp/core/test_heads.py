"""Heads by problem type: scores, decisions, thresholds, losses, targets, and the artifact field."""

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig

from ltp.core.artifact import ArtifactError, from_classifier, load_artifact, save_artifact
from ltp.core.heads import (
    MULTI_LABEL,
    REGRESSION,
    SINGLE_LABEL,
    Head,
    labels_given,
    problem_type_of,
    ranked,
    targets,
)
from tests.conftest import make_artifact

LOGITS = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 4.0]])


def test_scores_per_problem_type():
    single = Head(SINGLE_LABEL).scores(LOGITS)
    assert torch.allclose(single.sum(-1), torch.ones(2))
    multi = Head(MULTI_LABEL).scores(LOGITS)
    assert torch.allclose(multi, torch.sigmoid(LOGITS))
    assert multi[1].sum() > 1  # independent: labels do not share a unit of probability
    assert torch.equal(Head(REGRESSION).scores(LOGITS), LOGITS)


def test_decisions_and_per_label_thresholds():
    assert Head(SINGLE_LABEL).decide(LOGITS).tolist() == [0, 2]
    assert Head(MULTI_LABEL).decide(LOGITS).tolist() == [[True, False, True], [False, True, True]]
    strict = Head(MULTI_LABEL, thresholds=[0.9, 0.5, 0.99])  # sigmoid(2)=0.88, sigmoid(4)=0.98
    assert strict.decide(LOGITS).tolist() == [[False, False, False], [False, True, False]]
    assert strict.label_thresholds(3) == [0.9, 0.5, 0.99]
    assert Head(MULTI_LABEL).label_thresholds(2) == [0.5, 0.5]
    with pytest.raises(ValueError, match="3 label thresholds for 2 labels"):
        strict.label_thresholds(2)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        Head(MULTI_LABEL, thresholds=[0.5, 1.0])
    with pytest.raises(ValueError, match="belong to a multi-label head"):
        Head(SINGLE_LABEL, thresholds=[0.5])
    with pytest.raises(ValueError, match="problem_type must be one of"):
        Head("ordinal")


def test_losses_are_the_library_losses():
    y_single = torch.tensor([0, 2])
    assert torch.isclose(Head().loss(LOGITS, y_single), F.cross_entropy(LOGITS, y_single))
    weighted = Head().loss(LOGITS, y_single, class_weights=[1.0, 1.0, 3.0])
    assert weighted < Head().loss(LOGITS, y_single)  # the well-predicted class weighs more
    hot = targets(MULTI_LABEL, [(0, 2), (1,)], 3)
    assert hot.tolist() == [[1, 0, 1], [0, 1, 0]]
    assert torch.isclose(Head(MULTI_LABEL).loss(LOGITS, hot),
                         F.binary_cross_entropy_with_logits(LOGITS, hot))
    values = targets(REGRESSION, [1.5, 4.0], 1)
    assert values.shape == (2, 1)
    out = torch.tensor([[1.0], [3.0]])
    assert torch.isclose(Head(REGRESSION).loss(out, values), torch.tensor((0.25 + 1.0) / 2))
    # in units of the targets' spread: the same relative error weighs the same at any scale
    assert torch.isclose(Head(REGRESSION).loss(out * 10, values * 10, scale=10.0),
                         Head(REGRESSION).loss(out, values))


def test_problem_type_from_a_checkpoint_config():
    assert problem_type_of(BertConfig(num_labels=3)) == SINGLE_LABEL
    assert problem_type_of(BertConfig(num_labels=1)) == REGRESSION
    assert problem_type_of(BertConfig(num_labels=5, problem_type=MULTI_LABEL)) == MULTI_LABEL
    assert ranked([0.1, 0.7, 0.2], ["a", "b", "c"]) == [(0.7, "b"), (0.2, "c"), (0.1, "a")]
    assert labels_given([0.9, 0.2, 0.6], ["a", "b", "c"], [0.5, 0.1, 0.7]) == ["a", "b"]


def test_artifact_keeps_the_head_and_config_problem_type(tmp_path):
    make_artifact(tmp_path / "multi", ["toxic", "insult", "threat"],
                  head=Head(MULTI_LABEL, thresholds=[0.3, 0.5, 0.7]))
    meta = json.loads((tmp_path / "multi" / "ltp.json").read_text())
    assert meta["head"] == {"problem_type": MULTI_LABEL, "thresholds": [0.3, 0.5, 0.7]}
    config = json.loads((tmp_path / "multi" / "config.json").read_text())
    assert config["problem_type"] == MULTI_LABEL  # transformers' own pipelines read it
    artifact = load_artifact(tmp_path / "multi")
    assert artifact.meta.head == Head(MULTI_LABEL, [0.3, 0.5, 0.7])
    # wrapping the saved checkpoint again reads its problem type from the config
    assert from_classifier(tmp_path / "multi").meta.head.problem_type == MULTI_LABEL


def test_old_ltp_json_without_a_head_is_single_label(tmp_path):
    make_artifact(tmp_path / "old", ["neg", "pos"])
    path = tmp_path / "old" / "ltp.json"
    meta = json.loads(path.read_text())
    del meta["head"]
    path.write_text(json.dumps(meta))
    assert load_artifact(tmp_path / "old").meta.head == Head(SINGLE_LABEL)
    meta["head"] = {"problem_type": MULTI_LABEL, "thresholds": [0.5]}
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="1 label thresholds for 2 labels"):
        load_artifact(tmp_path / "old")


def test_regression_artifact_round_trip(tmp_path):
    make_artifact(tmp_path / "score", ["rating"], head=Head(REGRESSION))
    artifact = load_artifact(save_artifact(load_artifact(tmp_path / "score"), tmp_path / "copy"))
    assert artifact.meta.head.regression and artifact.meta.labels == ["rating"]
    assert json.loads((tmp_path / "copy" / "ltp.json").read_text())["head"] == {
        "problem_type": REGRESSION}


def test_balanced_multi_label_weighs_each_labels_positives_by_its_rarity():
    from ltp.core.heads import targets
    from ltp.train.losses import MAX_POSITIVE_WEIGHT, positive_weights

    labels = [(0,), (0, 1), (0,), (0,), (), (0,)] + [()] * 94  # label 1 once, label 2 never
    weights = positive_weights(labels, 3)
    assert weights[0] == pytest.approx(95 / 5) and weights[1] == MAX_POSITIVE_WEIGHT
    assert weights[2] == MAX_POSITIVE_WEIGHT
    logits = torch.zeros(2, 3)
    y = targets(MULTI_LABEL, [(0,), ()], 3)
    plain = Head(MULTI_LABEL).loss(logits, y)
    weighted = Head(MULTI_LABEL).loss(logits, y, [4.0, 1.0, 1.0])
    # one positive among six label slots, its term log 2 weighed 4x: (4 + 5) / 6 x log 2
    assert plain.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert weighted.item() == pytest.approx(9 / 6 * torch.log(torch.tensor(2.0)).item())
