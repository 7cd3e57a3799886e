"""End-to-end steps: fine-tune a dense parent, prune it with LTP, evaluate both."""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ltp.artifact import Artifact, from_classifier, load_artifact, provenance
from ltp.config import PruningConfig
from ltp.data import DatasetSplits
from ltp.evaluate import evaluate
from ltp.train import TrainConfig, finetune, hard_stage, soft_stage

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
    temperature: float = 1e-3
    # ramp end at the start of the soft stage, in units of the mean score 1/N
    final_threshold_x_mean: float = 1.28
    regularizer: str = "flops"
    soft_style: str = "cumulative"
    distill: float = 0.0
    batch_size: int = 32
    seed: int = 0

    def stage(self, max_length: int, soft: bool) -> TrainConfig:
        return TrainConfig(
            epochs=self.soft_epochs if soft else self.hard_epochs,
            lr=self.soft_lr if soft else self.hard_lr,
            batch_size=self.batch_size, max_length=max_length, seed=self.seed,
            lam=self.lam, threshold_lr=self.threshold_lr, regularizer=self.regularizer,
            distill=self.distill,
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
    """Soft stage (learn thresholds) then hard stage (thresholds frozen) from a parent."""
    artifact = load_artifact(parent_dir)
    teacher = load_artifact(parent_dir) if cfg.distill > 0 else None
    max_length = artifact.meta.max_length
    num_layers = artifact.model.encoder.num_layers
    normalizer = artifact.meta.pruning.normalizer
    artifact.model.set_pruning(PruningConfig(
        num_layers=num_layers, normalizer=normalizer, temperature=cfg.temperature,
        final_threshold=cfg.final_threshold_x_mean / normalizer, soft_style=cfg.soft_style))
    soft = soft_stage(artifact, data.train, cfg.stage(max_length, soft=True))
    hard = hard_stage(artifact, data.train, cfg.stage(max_length, soft=False), teacher)
    parent_meta = copy.deepcopy(artifact.meta.provenance)
    artifact.meta.provenance = provenance(
        stage="ltp", parent=str(parent_dir), parent_provenance=parent_meta, dataset=data.name,
        split_sizes=data.sizes(), prune=asdict(cfg), soft=soft.to_dict(), hard=hard.to_dict())
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

