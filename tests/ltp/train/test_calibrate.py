"""Thresholds calibrated from data: per-layer keep targets and a relative-FLOPs target."""

from dataclasses import replace

import pytest
import torch

from ltp.core.artifact import load_artifact
from ltp.core.text import pad_batch
from ltp.data.datasets import load_dataset
from ltp.data.encoding import encode_examples
from ltp.eval.evaluate import evaluate
from ltp.train.calibrate import (
    calibrate_schedule,
    geometric_schedule,
    kept_schedule,
    schedule_for_flops,
)
from ltp.train.stages import PruneConfig, prune_hard, prune_model, prune_soft


@pytest.fixture
def data(tiny_csv):
    return load_dataset(str(tiny_csv))


@pytest.fixture
def artifact(tiny_artifact_dir):
    return load_artifact(tiny_artifact_dir)


def test_schedule_keeps_the_asked_fraction_after_each_layer(artifact, data):
    inputs = encode_examples(artifact.tokenizer, data.train, 32)
    target = [0.7, 0.4]
    cfg = calibrate_schedule(artifact, inputs, target)
    assert cfg.thresholds()[0] > 0 and cfg.thresholds()[1] > 0
    got = torch.tensor(kept_schedule(artifact, inputs), dtype=torch.float64)
    # ties between equal scores may keep a token or two more than asked
    n = sum(e.num_tokens for e in inputs)
    assert torch.allclose(got, torch.tensor(target, dtype=torch.float64), atol=3 / n + 1e-9)
    # a threshold, not a quota: inputs of different lengths keep different fractions
    with torch.inference_mode():
        b = pad_batch(inputs[:16], artifact.tokenizer.pad_token_id)
        out = artifact.model(b.input_ids, b.attention_mask, b.token_type_ids)
    fractions = out.kept_tokens[:, 1].double() / out.input_tokens
    assert fractions.std() > 0.02


def test_schedule_keep_all_and_bad_targets(artifact, data):
    inputs = encode_examples(artifact.tokenizer, data.train[:10], 32)
    cfg = calibrate_schedule(artifact, inputs, [1.0, 1.0])
    assert cfg.thresholds() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="keep fractions"):
        calibrate_schedule(artifact, inputs, [0.5])
    with pytest.raises(ValueError, match="keep fractions"):
        calibrate_schedule(artifact, inputs, [0.5, 0.0])


def test_flops_target_is_met_on_the_calibration_inputs(artifact, data):
    assert geometric_schedule(0.5, 3) == [1.0, 0.5, 0.25]
    lengths = [e.num_tokens for e in encode_examples(artifact.tokenizer, data.train, 32)]
    keep = schedule_for_flops(artifact, lengths, 0.6)
    assert keep[0] == 1.0 and 0 < keep[1] < 1
    inputs = encode_examples(artifact.tokenizer, data.train, 32)
    calibrate_schedule(artifact, inputs, keep)
    examples = data.train
    got = evaluate(artifact, examples)["relative_flops"]
    assert got == pytest.approx(0.6, abs=0.05)
    with pytest.raises(ValueError, match="target relative FLOPs"):
        schedule_for_flops(artifact, lengths, 1.2)
    # a given shape keeps its order and reaches the target
    shaped = schedule_for_flops(artifact, lengths, 0.6, shape=[1.0, 0.9])
    assert shaped[0] == 1.0 and 0 < shaped[1] < 0.9


def test_prune_with_a_flops_target(tiny_artifact_dir, data):
    cfg = PruneConfig(target_flops=0.6, soft_epochs=1, hard_epochs=1, lam=1.0, soft_lr=1e-3,
                      hard_lr=1e-3, threshold_lr=1e-3, temperature=0.01, batch_size=8)
    artifact = prune_model(tiny_artifact_dir, data, cfg)
    prov = artifact.meta.provenance
    assert prov["calibration"]["examples"] == len(data.train)
    calibration = prov["calibration"]
    assert calibration["keep"][0] == 1.0
    # the soft stage's schedule, scaled back to the target: same order between layers
    learned, start = calibration["soft_keep"], calibration["hard_start_keep"]
    lengths = [e.num_tokens for e in encode_examples(artifact.tokenizer, data.train, 32)]
    assert start == pytest.approx(schedule_for_flops(artifact, lengths, 0.6, shape=learned))
    assert prov["soft"]["stage"] == "soft" and prov["hard"]["stage"] == "hard"
    flops = artifact.meta.eval["ltp"]["test"]["relative_flops"]
    assert flops < 0.8
    # no soft stage: the calibrated thresholds go straight into the hard stage, unchanged
    skip = prune_model(tiny_artifact_dir, data, PruneConfig(target_flops=0.6, soft_epochs=0,
                                                            hard_epochs=1, batch_size=8))
    assert skip.meta.provenance["soft"] is None
    calibration = skip.meta.provenance["calibration"]
    positive = [t for t in calibration["thresholds"] if t > 0]
    assert calibration["temperature"] == pytest.approx(0.1 * sum(positive) / len(positive))
    assert calibration["hard_start_keep"] == pytest.approx(calibration["keep"], abs=0.05)
    # after the hard stage the thresholds are set back to the schedule it started from
    assert skip.model.thresholds().tolist() == pytest.approx(calibration["final_thresholds"])
    inputs = encode_examples(skip.tokenizer, data.train, 32)
    assert kept_schedule(skip, inputs) == pytest.approx(calibration["hard_start_keep"], abs=0.02)


def test_flops_target_needs_the_flops_regulariser():
    with pytest.raises(ValueError, match="regularizer 'flops'"):
        PruneConfig(target_flops=0.5, regularizer="uniform")
    with pytest.raises(ValueError, match="target_flops"):
        PruneConfig(target_flops=1.5)


def test_a_layer_that_keeps_only_the_classifier_tokens_leaves_later_layers_nothing(artifact, data):
    """A learned schedule may keep almost nothing after a layer (a soft stage that pruned
    hard): later layers then have no token to rank, and calibration carries on."""
    inputs = encode_examples(artifact.tokenizer, data.train[:10], 32)
    cfg = calibrate_schedule(artifact, inputs, [1e-6, 0.5])
    assert cfg.thresholds()[1] == cfg.thresholds()[0] > 0
    assert kept_schedule(artifact, inputs)[0] == pytest.approx(10 / sum(e.num_tokens for e in inputs))


def test_layer_zero_prunes_from_the_start_when_asked(tiny_artifact_dir, data):
    assert geometric_schedule(0.5, 3, first=0.8) == [0.8, 0.4, 0.2]
    with pytest.raises(ValueError, match="layer 0"):
        geometric_schedule(0.5, 3, first=0.0)
    with pytest.raises(ValueError, match="first_keep"):
        PruneConfig(first_keep=1.5)
    cfg = PruneConfig(target_flops=0.6, first_keep=0.7, soft_epochs=1, hard_epochs=1, lam=1.0,
                      soft_lr=1e-3, hard_lr=1e-3, threshold_lr=1e-2, temperature=0.01,
                      batch_size=8)
    start = prune_soft(tiny_artifact_dir, data, cfg)
    calibration = start.calibration
    # layer 0 starts with a threshold (its 0.7 scaled to the budget with the rest of the
    # schedule), which the soft stage then learns as every other layer's
    assert 0 < calibration["keep"][0] < 1.0
    assert calibration["thresholds"][0] > 0
    assert calibration["soft_keep"][0] < 1.0
    artifact = prune_hard(start, data)
    assert artifact.model.thresholds()[0] > 0
    ev = artifact.meta.eval["ltp"]["test"]
    assert ev["kept_fraction_per_layer"][0] < 1.0
    assert ev["relative_flops"] == pytest.approx(0.6, abs=0.1)
    # the same budget with layer 0 never pruning: its threshold stays 0, all its tokens kept
    whole = prune_model(tiny_artifact_dir, data, replace(cfg, first_keep=1.0))
    assert whole.model.thresholds()[0] == 0
    assert whole.meta.eval["ltp"]["test"]["kept_fraction_per_layer"][0] == 1.0
