"""Training stages on a tiny model and a small learnable data set."""

import random

import pytest
import torch

from ltp.artifact import load_artifact
from ltp.data import load_dataset
from ltp.evaluate import evaluate
from ltp.train import TrainConfig, finetune, hard_stage, soft_stage, training_batches

EVAL_KEYS = {"accuracy", "relative_flops", "relative_model_flops", "kept_tokens_per_layer",
             "kept_fraction_per_layer", "examples", "mean_input_tokens"}


@pytest.fixture
def data(tiny_csv):
    return load_dataset(str(tiny_csv))


def test_finetune_lowers_the_loss(tiny_artifact_dir, data):
    artifact = load_artifact(tiny_artifact_dir)
    result = finetune(artifact, data.train, TrainConfig(epochs=15, lr=1e-3, batch_size=8,
                                                        max_length=32))
    first, last = result.to_dict()["first_loss"], result.to_dict()["last_loss"]
    assert last < first - 0.1


def test_soft_stage_moves_thresholds_and_lambda_controls_pruning(tiny_artifact_dir, data):
    kept = {}
    for lam in (0.0, 2.0):
        artifact = load_artifact(tiny_artifact_dir)
        artifact.model.pruning.temperature = 0.01  # scores are ~1/16 here, not ~1/128
        before = artifact.model.thresholds().clone()
        cfg = TrainConfig(epochs=3, lr=1e-3, batch_size=8, max_length=32, lam=lam,
                          threshold_lr=5e-3)
        soft_stage(artifact, data.train, cfg)
        assert not torch.equal(artifact.model.thresholds(), before), "thresholds moved"
        assert artifact.meta.pruning.delta == artifact.model.threshold_delta.tolist()
        kept[lam] = evaluate(artifact, data.train)["relative_flops"]
    assert kept[2.0] < kept[0.0], "a larger lambda keeps fewer tokens"


def test_hard_stage_freezes_thresholds(tiny_artifact_dir, data):
    artifact = load_artifact(tiny_artifact_dir)
    before = artifact.model.thresholds().clone()
    weights = artifact.model.hf.classifier.weight.clone()
    hard_stage(artifact, data.train, TrainConfig(epochs=1, lr=1e-3, batch_size=8, max_length=32))
    assert torch.equal(artifact.model.thresholds(), before)
    assert not torch.equal(artifact.model.hf.classifier.weight, weights)


def test_eval_fields_and_truncation(tiny_artifact_dir, data):
    artifact = load_artifact(tiny_artifact_dir)
    full = evaluate(artifact, data.test, mode="dense")
    assert EVAL_KEYS <= full.keys()
    assert full["relative_flops"] == pytest.approx(1.0)
    assert full["examples"] == len(data.test)
    cut = evaluate(artifact, data.test, mode="dense", truncate_to=6)
    assert cut["relative_flops"] < 1.0
    pruned = evaluate(artifact, data.test)
    assert pruned["relative_flops"] < 1.0


def test_training_batches_cover_every_example_once():
    lengths = [random.Random(i).randint(3, 60) for i in range(103)]
    batches = training_batches(lengths, 8, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(103))
    assert batches == training_batches(lengths, 8, random.Random(0))
