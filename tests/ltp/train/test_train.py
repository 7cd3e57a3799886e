"""Training stages on a tiny model and a small learnable data set."""

import random

import pytest
import torch

from ltp.core.artifact import load_artifact
from ltp.data.datasets import load_dataset
from ltp.eval.evaluate import evaluate
from ltp.train.config import TrainConfig
from ltp.train.loop import finetune, hard_stage, soft_stage, training_batches

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
    assert "decisions" not in pruned  # only when asked
    decided = evaluate(artifact, data.test, decisions=True)
    assert len(decided["decisions"]) == len(data.test)
    correct = [d == e.label for d, e in zip(decided["decisions"], data.test, strict=True)]
    assert sum(correct) / len(correct) == pytest.approx(decided["accuracy"])


def test_training_batches_cover_every_example_once():
    lengths = [random.Random(i).randint(3, 60) for i in range(103)]
    batches = training_batches(lengths, 8, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(103))
    assert batches == training_batches(lengths, 8, random.Random(0))


def test_small_data_schedule_has_a_step_minimum_on_50_rows(tmp_path, tiny_artifact_dir):
    """50 rows (40 to train): epochs would give 3 steps a pass; the schedule asks for the
    minimum number of optimiser steps, and a stage runs exactly the steps it is given."""
    from ltp.train.stages import MAX_STEPS, MIN_STEPS, schedule_for_data

    path = tmp_path / "small.csv"
    path.write_text("text,label\n" + "".join(
        f"{'good' if i % 2 else 'bad'} film {i},{'pos' if i % 2 else 'neg'}\n" for i in range(50)))
    small = load_dataset(str(path))
    assert small.sizes()["train"] == 40
    finetune_cfg, prune_cfg = schedule_for_data(len(small.train), [20, 20], max_length=32)
    assert finetune_cfg.steps == MIN_STEPS  # not 3 epochs x 3 batches
    assert finetune_cfg.batch_size == 16 and finetune_cfg.warmup > 0
    assert finetune_cfg.eval_every > 0 and finetune_cfg.patience > 0
    assert finetune_cfg.class_weight is None
    assert prune_cfg.soft_steps >= 60 and prune_cfg.hard_steps >= 100
    assert prune_cfg.target_flops == "auto"
    big_cfg, _ = schedule_for_data(20_000, [15_000, 5_000], max_length=128)
    assert big_cfg.batch_size == 32 and big_cfg.steps == MAX_STEPS  # 6 passes would be 3,750
    assert big_cfg.class_weight == "balanced"

    artifact = load_artifact(tiny_artifact_dir)
    result = finetune(artifact, small.train, TrainConfig(steps=25, lr=1e-3, batch_size=16,
                                                         max_length=32))
    assert result.steps == 25 == len(result.losses)


def test_dev_evaluation_early_stop_and_best_checkpoint(tiny_artifact_dir, data):
    artifact = load_artifact(tiny_artifact_dir)
    cfg = TrainConfig(steps=60, lr=3e-3, batch_size=8, max_length=32, eval_every=4, patience=2)
    result = finetune(artifact, data.train, cfg, dev=data.dev)
    info = result.to_dict()
    assert info["planned_steps"] == 60 and info["steps"] <= 60
    steps = [h[0] for h in info["dev_history"]]
    assert steps == sorted(steps) and steps[0] == 4
    best = max(info["dev_history"], key=lambda h: (h[1], h[2], -h[3]))
    assert info["best_step"] == best[0]
    # the restored weights are the best checkpoint's: the dev figures match it
    assert evaluate(artifact, data.dev, mode="dense")["accuracy"] == pytest.approx(best[1])
    if info["stopped_early"]:
        assert len(steps) - steps.index(info["best_step"]) - 1 >= 2


def test_balanced_class_weights_and_weighted_loss():
    from ltp.train.losses import balanced_class_weights, task_loss

    assert balanced_class_weights([0, 0, 0, 1], 2) == [pytest.approx(0.6667), 2.0]
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([1, 1])
    plain = task_loss(logits, y, TrainConfig())
    weighted = task_loss(logits, y, TrainConfig(class_weights=[1.0, 5.0]))
    assert plain == pytest.approx(weighted)  # one class in the batch: weights cancel
    mixed = torch.tensor([0, 1])
    assert task_loss(logits, mixed, TrainConfig(class_weights=[1.0, 1.0])) == pytest.approx(
        task_loss(logits, mixed, TrainConfig()))
