"""End-to-end steps: fine-tune a dense parent, prune it with LTP, evaluate both."""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ltp.artifact import Artifact, from_classifier, load_artifact, provenance
from ltp.calibrate import calibrate_schedule, kept_schedule, schedule_for_flops
from ltp.config import PruningConfig
from ltp.data import DatasetSplits
from ltp.evaluate import evaluate
from ltp.train import TrainConfig, encode_examples, finetune, hard_stage, soft_stage

log = logging.getLogger(__name__)


@dataclass
class PruneConfig:
    """The two LTP stages, each with its own epochs and learning rate."""

    lam: float = 0.05
    soft_epochs: float = 1.0
    hard_epochs: float = 1.0
    soft_lr: float = 2e-5
    hard_lr: float = 2e-5
    threshold_lr: float = 1e-3
    # soft-mask temperature; None: 1e-3 (the paper's), or with a FLOPs target a tenth of the
    # mean calibrated threshold (softer masks make the soft FLOPs a poor guide to the hard)
    temperature: float | None = None
    # ramp end at the start of the soft stage, in units of the mean score 1/N
    final_threshold_x_mean: float = 1.28
    regularizer: str = "flops"
    soft_style: str = "cumulative"
    # "fixed" (the paper's score scale) or "median" (per-input; see pruning.normalize_scores)
    score_norm: str = "fixed"
    distill: float = 0.0
    # Start from thresholds calibrated (on a sample of the training set) to this relative
    # FLOPs; the soft stage (if any) then keeps the soft FLOPs at or below it: the penalty is
    # lambda x layers x max(0, soft relative FLOPs - target); after the hard stage the
    # thresholds are set back to the kept fractions it started from. None: the ramp start,
    # and lambda x regulariser as in the paper.
    target_flops: float | None = None
    calibration_examples: int = 600
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.target_flops is not None:
            if not 0.0 < self.target_flops < 1.0:
                raise ValueError(f"target_flops must be in (0, 1), got {self.target_flops}")
            if self.regularizer != "flops":
                raise ValueError("target_flops is a FLOPs budget: it needs regularizer 'flops'")

    def stage(self, max_length: int, soft: bool) -> TrainConfig:
        return TrainConfig(
            epochs=self.soft_epochs if soft else self.hard_epochs,
            lr=self.soft_lr if soft else self.hard_lr,
            batch_size=self.batch_size, max_length=max_length, seed=self.seed,
            lam=self.lam, threshold_lr=self.threshold_lr, regularizer=self.regularizer,
            distill=self.distill, target_flops=self.target_flops,
        )


@dataclass
class FinetuneConfig:
    epochs: float = 1.0
    lr: float = 1e-4
    batch_size: int = 32
    max_length: int = 128
    seed: int = 0

    def train(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                           max_length=self.max_length, seed=self.seed)


def split_metrics(artifact: Artifact, data: DatasetSplits, mode: str = "compact") -> dict:
    return {split: evaluate(artifact, data.split(split), mode=mode) for split in ("dev", "test")}


def finetune_model(base: str, data: DatasetSplits, cfg: FinetuneConfig) -> Artifact:
    """A dense classifier from a base encoder (or classifier) folder or name; no pruning."""
    torch.manual_seed(cfg.seed)
    artifact = from_classifier(base, labels=data.labels, max_length=cfg.max_length)
    pruning = PruningConfig(num_layers=artifact.model.encoder.num_layers,
                            normalizer=cfg.max_length, final_threshold=0.0)
    artifact.model.set_pruning(pruning)
    result = finetune(artifact, data.train, cfg.train())
    artifact.meta.provenance = provenance(
        stage="finetune", base=str(base), dataset=data.name, split_sizes=data.sizes(),
        finetune=asdict(cfg), training=result.to_dict())
    artifact.meta.eval = {"dense": split_metrics(artifact, data, "dense")}
    return artifact


def prune_model(parent_dir: str | Path, data: DatasetSplits, cfg: PruneConfig) -> Artifact:
    """Soft stage (learn thresholds) then hard stage (thresholds frozen) from a parent.

    With ``target_flops``: thresholds calibrated to the target first; the soft stage's
    schedule scaled back to the target before the hard stage; after it, thresholds set back
    to the schedule it started from (``provenance.calibration`` records each step).
    """
    artifact = load_artifact(parent_dir)
    teacher = load_artifact(parent_dir) if cfg.distill > 0 else None
    max_length = artifact.meta.max_length
    num_layers = artifact.model.encoder.num_layers
    normalizer = artifact.meta.pruning.normalizer
    ramp_end = 0.0 if cfg.target_flops is not None else cfg.final_threshold_x_mean / normalizer
    artifact.model.set_pruning(PruningConfig(
        num_layers=num_layers, normalizer=normalizer, temperature=cfg.temperature or 1e-3,
        final_threshold=ramp_end, soft_style=cfg.soft_style, score_norm=cfg.score_norm))
    calibration = inputs = None
    if cfg.target_flops is not None:
        sample = random.Random(cfg.seed).sample(data.train, min(cfg.calibration_examples,
                                                                len(data.train)))
        inputs = encode_examples(artifact, sample, max_length)
        keep = schedule_for_flops(artifact, [e.num_tokens for e in inputs], cfg.target_flops)
        pruning = calibrate_schedule(artifact, inputs, keep)
        calibration = {"examples": len(sample), "keep": keep, "thresholds": pruning.thresholds()}
        if cfg.temperature is None:
            positive = [t for t in pruning.thresholds() if t > 0] or [1.0 / normalizer]
            artifact.model.pruning.temperature = 0.1 * sum(positive) / len(positive)
        calibration["temperature"] = artifact.model.pruning.temperature
    soft = None
    if cfg.soft_epochs > 0:
        soft = soft_stage(artifact, data.train, cfg.stage(max_length, soft=True)).to_dict()
    if inputs is not None:
        if soft is not None:
            # The soft stage decides where to prune; its soft FLOPs are only a guide to the
            # hard rule's. Keep the order of its schedule and scale it back to the target.
            calibration["soft_keep"] = learned = kept_schedule(artifact, inputs)
            keep = schedule_for_flops(artifact, [e.num_tokens for e in inputs],
                                      cfg.target_flops, shape=learned)
            calibrate_schedule(artifact, inputs, keep)
        calibration["hard_start_keep"] = keep
    hard = hard_stage(artifact, data.train, cfg.stage(max_length, soft=False), teacher)
    if inputs is not None:
        # Weights that change under frozen thresholds shift the scores, and kept fractions
        # drift (up, as a rule). Set the thresholds back to the schedule the stage started
        # from, so the FLOPs target holds.
        calibration["hard_end_keep"] = kept_schedule(artifact, inputs)
        pruning = calibrate_schedule(artifact, inputs, calibration["hard_start_keep"])
        calibration["final_thresholds"] = pruning.thresholds()
    parent_meta = copy.deepcopy(artifact.meta.provenance)
    artifact.meta.provenance = provenance(
        stage="ltp", parent=str(parent_dir), parent_provenance=parent_meta, dataset=data.name,
        split_sizes=data.sizes(), prune=asdict(cfg), calibration=calibration, soft=soft,
        hard=hard.to_dict())
    artifact.meta.eval = {"ltp": split_metrics(artifact, data, "compact"),
                          "dense_parent": artifact.meta.eval.get("dense")}
    return artifact


def with_overrides(cfg, overrides: dict):
    """Replace dataclass fields from a dict, with a clear error on an unknown key."""
    known = set(cfg.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return replace(cfg, **overrides)

