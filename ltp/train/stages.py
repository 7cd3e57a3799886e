"""End-to-end steps: fine-tune a dense parent, prune it with LTP, evaluate both."""

from __future__ import annotations

import copy
import logging
import random
import statistics
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ltp.core.artifact import Artifact, from_classifier, load_artifact, provenance, save_artifact
from ltp.core.config import PruningConfig
from ltp.core.heads import MULTI_LABEL, REGRESSION, SINGLE_LABEL, Head, targets
from ltp.data.datasets import DatasetSplits, Example
from ltp.data.encoding import encode_examples
from ltp.eval.evaluate import evaluate, predict_logits
from ltp.eval.metrics import standard_error, tune_thresholds
from ltp.train.calibrate import calibrate_schedule, kept_schedule, schedule_for_flops
from ltp.train.config import TrainConfig
from ltp.train.loop import finetune, hard_stage, soft_stage
from ltp.train.losses import balanced_class_weights, positive_weights
from ltp.train.qat import weights_on_int8_grid

log = logging.getLogger(__name__)

CLASS_WEIGHTS = (None, "balanced")
AUTO_FLOPS_CANDIDATES = (0.35, 0.45, 0.55, 0.65, 0.75)
AUTO_FLOPS_TOLERANCE = 0.01  # within 1 point of the dense dev figure (or its noise on dev, if more)
AUTO_FLOPS_EXAMPLES = 300  # calibration sample for each candidate of the auto sweep


@dataclass
class StageSettings:
    """What a dense fine-tune and the LTP stages set alike (recipe keys of both)."""

    batch_size: int = 32
    seed: int = 0
    warmup: float = 0.06  # fraction of optimiser steps with a linear warm-up
    # None or "balanced": classes weighted by their counts (single-label), or each label's
    # positives by its negatives / positives (multi-label); see ``task_settings``
    class_weight: str | None = None

    def __post_init__(self) -> None:
        if self.class_weight not in CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}, got {self.class_weight!r}")

    def _train(self, task: dict | None, **stage) -> TrainConfig:
        """The optimiser settings of one training run: the shared fields, the task's
        (``task_settings``) and ``stage``'s."""
        return TrainConfig(batch_size=self.batch_size, seed=self.seed, warmup=self.warmup,
                           **(task or {}), **stage)


def task_settings(cfg: StageSettings, data: DatasetSplits) -> dict:
    """What the data set tells a training run: the head's problem type, the class weights
    (single-label) or positive weights (multi-label) with ``class_weight: balanced`` and,
    for regression, the training targets' standard deviation (the unit of the squared
    error)."""
    task = {"problem_type": data.problem_type}
    if data.problem_type == MULTI_LABEL and cfg.class_weight == "balanced":
        task["class_weights"] = positive_weights([e.label for e in data.train], len(data.labels))
    if data.problem_type == SINGLE_LABEL and cfg.class_weight == "balanced":
        task["class_weights"] = balanced_class_weights([e.label for e in data.train],
                                                       len(data.labels))
    if data.problem_type == REGRESSION:
        task["target_scale"] = statistics.pstdev(e.label for e in data.train) or 1.0
    return task


@dataclass
class PruneConfig(StageSettings):
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
    # the hard stage and the artifact fuse the tokens each layer drops (PruningConfig.fuse)
    fuse: bool = False
    distill: float = 0.0
    # the hard stage's weight of the parent's classifier-token hidden states (every layer;
    # ``ltp.train.losses.hidden_distillation_loss``), added to the distilled loss; 0: off
    distill_hidden: float = 0.0
    # ranking distillation in the soft stage (its weight; 0: off) over the parent's top tokens
    ranking: float = 0.0
    ranking_top: int = 20
    # the hard stage trains the weights on the int8 grid of ONNX Runtime's quantiser and
    # leaves them on it, so that the int8 artifact computes as the fp32 one (``ltp.train.qat``)
    quantize_aware: bool = False
    # Start from thresholds calibrated (on a sample of the training set) to this relative
    # FLOPs; the soft stage (if any) then keeps the soft FLOPs at or below it: the penalty is
    # lambda x layers x max(0, soft relative FLOPs - target); after the hard stage the
    # thresholds are set back to the kept fractions it started from. None: the ramp start,
    # and lambda x regulariser as in the paper. "auto": the smallest of
    # AUTO_FLOPS_CANDIDATES whose calibrated thresholds (no training) keep the dev accuracy
    # within a point of dense; the choice is recorded in provenance.calibration.auto.
    target_flops: float | str | None = None
    calibration_examples: int = 600
    # with target_flops, the tokens layer 0 keeps in the calibrated starting schedule,
    # before the budget scales it (``schedule_for_flops``'s ``first_keep``): 1.0, layer 0
    # never prunes (the paper's); below 1, it prunes from the start and the soft stage
    # learns its threshold as every later one's. Without a budget nothing is calibrated and
    # it is not read (a sweep's lambda runs share their settings with its budget runs)
    first_keep: float = 1.0
    # optimiser steps of each stage (None: epochs)
    soft_steps: int | None = None
    hard_steps: int | None = None
    # build once per seed (each run's ``seed``) and keep the run of median dev figure; every
    # run's figures go into the card (``prune_seeds``). None: one run, of ``seed``
    seeds: list[int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for weight in ("distill", "distill_hidden", "ranking"):
            if getattr(self, weight) < 0:
                raise ValueError(f"{weight} is a loss weight: 0 or more, got {getattr(self, weight)!r}")
        if not 0.0 < self.first_keep <= 1.0:
            raise ValueError(f"first_keep is a fraction of the tokens, in (0, 1], got {self.first_keep!r}")
        if self.seeds is not None:
            if not self.seeds or len(set(self.seeds)) != len(self.seeds):
                raise ValueError(f"seeds must be distinct and at least one, got {self.seeds!r}")
            self.seeds = [int(seed) for seed in self.seeds]
        if self.target_flops is not None:
            number = isinstance(self.target_flops, int | float) and 0.0 < self.target_flops < 1.0
            if not number and self.target_flops != "auto":
                raise ValueError(f"target_flops must be in (0, 1) or 'auto', got {self.target_flops!r}")
            if self.regularizer != "flops":
                raise ValueError("target_flops is a FLOPs budget: it needs regularizer 'flops'")

    def stage(self, max_length: int, soft: bool, task: dict | None = None) -> TrainConfig:
        return self._train(
            task,
            epochs=self.soft_epochs if soft else self.hard_epochs,
            steps=self.soft_steps if soft else self.hard_steps,
            lr=self.soft_lr if soft else self.hard_lr,
            max_length=max_length, lam=self.lam, threshold_lr=self.threshold_lr,
            regularizer=self.regularizer, distill=self.distill,
            distill_hidden=self.distill_hidden, target_flops=self.target_flops,
            ranking=self.ranking, ranking_top=self.ranking_top,
        )


@dataclass
class FinetuneConfig(StageSettings):
    """The dense fine-tune of a base encoder."""

    epochs: float = 1.0
    lr: float = 1e-4
    max_length: int = 128
    # optimiser steps (None: epochs x batches); see ``schedule_for_data``
    steps: int | None = None
    # dev evaluation every this many steps (0: none), early stop after ``patience``
    # evaluations without a gain (0: never), best checkpoint restored
    eval_every: int = 0
    patience: int = 0

    def train(self, task: dict | None = None) -> TrainConfig:
        return self._train(task, epochs=self.epochs, lr=self.lr,
                           max_length=self.max_length, steps=self.steps,
                           eval_every=self.eval_every, patience=self.patience)


MIN_STEPS = 300  # fewer optimiser steps than this leaves a small-data model at the majority class
MAX_STEPS = 3000
SCHEDULE_EPOCHS = 6  # the step budget aims at this many passes, within the bounds above


def schedule_for_data(n_train: int, label_counts: list[int], max_length: int,
                      seed: int = 0, problem_type: str = SINGLE_LABEL
                      ) -> tuple[FinetuneConfig, PruneConfig]:
    """Training settings chosen for a data set's size and balance.

    Training length in optimiser steps: about ``SCHEDULE_EPOCHS`` passes, at least
    ``MIN_STEPS`` (small sets need many passes) and at most ``MAX_STEPS``; batches of 16 below
    3,000 examples (more steps per pass), else 32; 10% linear warm-up; dev evaluation about
    20 times, early stop after 6 evaluations without a gain, best checkpoint restored; class
    weights balanced when the largest class is 1.5x the smallest or more (single-label;
    a multi-label head is tuned by its per-label thresholds instead). LTP: the
    reviews-minilm-ltp recipe's settings, with its two stages in steps (about 2 and 3 passes,
    at least 60 and 100 steps).
    """
    batch = 16 if n_train < 3000 else 32
    per_epoch = max(1, -(-n_train // batch))
    steps = min(MAX_STEPS, max(MIN_STEPS, SCHEDULE_EPOCHS * per_epoch))
    imbalanced = (problem_type == SINGLE_LABEL
                  and max(label_counts) >= 1.5 * max(1, min(label_counts)))
    weight = "balanced" if imbalanced else None
    finetune_cfg = FinetuneConfig(
        lr=1e-4, batch_size=batch, max_length=max_length, seed=seed, steps=steps, warmup=0.1,
        eval_every=max(5, steps // 20), patience=6, class_weight=weight)
    prune_cfg = PruneConfig(
        target_flops="auto", score_norm="median", lam=0.05, regularizer="flops",
        soft_lr=2e-5, hard_lr=2e-5, threshold_lr=1e-4, distill=0.5, batch_size=batch,
        seed=seed, soft_steps=min(600, max(60, 2 * per_epoch)),
        hard_steps=min(900, max(100, 3 * per_epoch)), class_weight=weight)
    return finetune_cfg, prune_cfg


def split_metrics(artifact: Artifact, data: DatasetSplits, mode: str = "compact") -> dict:
    return {split: evaluate(artifact, data.split(split), mode=mode, progress=True)
            for split in ("dev", "test")}


def tune_label_thresholds(artifact: Artifact, dev: list[Example], mode: str) -> dict | None:
    """A multi-label head's threshold per label, set to maximise each label's F1 on ``dev``
    (``ltp.eval.metrics.tune_thresholds``); what was set, for provenance. None for the
    other heads."""
    head = artifact.meta.head
    if not head.multi_label:
        return None
    logits = predict_logits(artifact, dev, mode=mode)[0]
    truth = targets(MULTI_LABEL, [e.label for e in dev], len(artifact.meta.labels))
    head.thresholds = tune_thresholds(logits.sigmoid().numpy(), truth.numpy())
    return {"split": "dev", "mode": mode, "thresholds": head.thresholds}


def _start_at_mean(artifact: Artifact, data: DatasetSplits) -> None:
    """A new regression head starts at the training mean (its output layer's bias), so the
    first steps learn the text's effect rather than the target's offset."""
    out = [m for m in artifact.model.hf.modules()
           if isinstance(m, torch.nn.Linear) and m.out_features == len(data.labels)][-1]
    with torch.no_grad():
        out.bias.fill_(statistics.fmean(e.label for e in data.train))


def finetune_model(base: str, data: DatasetSplits, cfg: FinetuneConfig) -> Artifact:
    """A dense model from a base encoder (or classifier) folder or name, with the data's
    head; no pruning. A multi-label head's thresholds are then tuned on dev."""
    torch.manual_seed(cfg.seed)
    artifact = from_classifier(base, labels=data.labels, max_length=cfg.max_length,
                               head=Head(data.problem_type))
    if data.problem_type == REGRESSION:
        _start_at_mean(artifact, data)
    pruning = PruningConfig(num_layers=artifact.model.encoder.num_layers,
                            normalizer=cfg.max_length, final_threshold=0.0)
    artifact.model.set_pruning(pruning)
    result = finetune(artifact, data.train, cfg.train(task_settings(cfg, data)),
                      dev=data.dev if cfg.eval_every else None)
    tuned = tune_label_thresholds(artifact, data.dev, "dense")
    artifact.meta.provenance = provenance(
        stage="finetune", base=str(base), dataset=data.name, split_sizes=data.sizes(),
        problem_type=data.problem_type, finetune=asdict(cfg), training=result.to_dict(),
        **({"label_thresholds": tuned} if tuned else {}))
    artifact.meta.eval = {"dense": split_metrics(artifact, data, "dense")}
    return artifact


def choose_target_flops(artifact: Artifact, data: DatasetSplits, cfg: PruneConfig,
                        candidates=AUTO_FLOPS_CANDIDATES) -> dict:
    """The smallest candidate budget whose calibrated thresholds (no training) keep the
    head's dev figure (accuracy, micro-F1, Spearman) within ``AUTO_FLOPS_TOLERANCE`` of dense,
    or within the dense figure's standard error on the dev split (or one dev example) where
    that is more: on a few dozen dev examples a candidate a few points under dense is
    indistinguishable from it, and taking the largest budget would throw the pruning away.

    Calibration alone is the pessimistic case: the LTP stages then train under the budget.
    Candidates run from the smallest up and stop at the first that qualifies; when none
    does, the largest is taken.
    """
    dense = evaluate(artifact, data.dev, mode="dense")["score"]
    metric = artifact.meta.head.metric
    tolerance = max(AUTO_FLOPS_TOLERANCE, 1.0 / len(data.dev),
                    standard_error(metric, dense, len(data.dev)))
    sample = random.Random(cfg.seed).sample(data.train, min(AUTO_FLOPS_EXAMPLES, len(data.train)))
    inputs = encode_examples(artifact.tokenizer, sample, artifact.meta.max_length)
    lengths = [e.num_tokens for e in inputs]
    saved = copy.deepcopy(artifact.model.pruning)
    tried, chosen = [], None
    for target in sorted(candidates):
        try:
            keep = schedule_for_flops(artifact, lengths, target, first_keep=cfg.first_keep)
        except ValueError:  # out of reach for this model and these lengths
            tried.append({"target": target, "infeasible": True})
            continue
        calibrate_schedule(artifact, inputs, keep)
        ev = evaluate(artifact, data.dev, mode="compact")
        tried.append({"target": target, "dev_score": ev["score"],
                      "dev_relative_flops": round(ev["relative_flops"], 4)})
        log.info("auto budget: target %.2f -> dev %s %.4f (dense %.4f), relative FLOPs %.3f",
                 target, metric, ev["score"], dense, ev["relative_flops"])
        if ev["score"] >= dense - tolerance - 1e-9:
            chosen = target
            break
    artifact.model.set_pruning(saved)
    feasible = [t["target"] for t in tried if not t.get("infeasible")]
    if not feasible:
        raise ValueError(f"no FLOPs budget of {list(candidates)} can be reached by this model on "
                         "these input lengths; give --target-flops")
    if chosen is None:
        chosen = max(feasible)
        reason = (f"no candidate kept dev {metric} within {100 * tolerance:.1f} points of dense "
                  f"({100 * dense:.1f}) before training; took the largest, {chosen}")
    else:
        reason = (f"smallest candidate budget whose calibrated thresholds, before any LTP "
                  f"training, kept dev {metric} within {100 * tolerance:.1f} points of dense "
                  f"({100 * dense:.1f} -> {100 * tried[-1]['dev_score']:.1f}, "
                  f"{len(data.dev)} dev examples)")
    return {"chosen": chosen, "reason": reason, "metric": metric, "dense_dev_score": dense,
            "tolerance": tolerance, "tried": tried, "sample": len(sample)}


@dataclass
class SoftResult:
    """A model after the soft stage, ready for the hard stage (``prune_soft``): the model
    with its hard-stage starting thresholds, the teacher, the calibration record and sample,
    and what ``prune_model`` records of the run."""

    parent: str  # the parent's folder, as given
    artifact: Artifact
    teacher: Artifact | None
    cfg: PruneConfig  # as run: an "auto" budget replaced by the budget chosen
    recorded: PruneConfig  # as asked
    task: dict
    calibration: dict | None
    inputs: list | None
    soft: dict | None

    def branch(self, **hard) -> SoftResult:
        """A copy to run one more hard stage from (the teacher shared, read only), with
        ``hard``'s settings of the hard stage changed (``distill_hidden=4.0``, say)."""
        branch = copy.deepcopy(self, memo={id(self.teacher): self.teacher})
        branch.cfg, branch.recorded = replace(self.cfg, **hard), replace(self.recorded, **hard)
        return branch


def prune_soft(parent_dir: str | Path, data: DatasetSplits, cfg: PruneConfig) -> SoftResult:
    """From a parent to the hard stage's start: thresholds calibrated to the budget (with
    ``target_flops``), the soft stage, and its schedule scaled back to the budget."""
    artifact = load_artifact(parent_dir)
    if artifact.meta.head.problem_type != data.problem_type:
        raise ValueError(f"{parent_dir} has a {artifact.meta.head.problem_type} head; the data "
                         f"{data.name} is {data.problem_type}")
    teacher = (load_artifact(parent_dir)
               if cfg.distill > 0 or cfg.distill_hidden > 0 or cfg.ranking > 0 else None)
    task = task_settings(cfg, data)
    max_length = artifact.meta.max_length
    num_layers = artifact.model.encoder.num_layers
    normalizer = artifact.meta.pruning.normalizer
    ramp_end = 0.0 if cfg.target_flops is not None else cfg.final_threshold_x_mean / normalizer
    artifact.model.set_pruning(PruningConfig(
        num_layers=num_layers, normalizer=normalizer, temperature=cfg.temperature or 1e-3,
        final_threshold=ramp_end, soft_style=cfg.soft_style, score_norm=cfg.score_norm,
        fuse=cfg.fuse))
    calibration = inputs = auto = None
    recorded = cfg
    if cfg.target_flops == "auto":
        auto = choose_target_flops(artifact, data, cfg)
        cfg = replace(cfg, target_flops=auto["chosen"])
    if cfg.target_flops is not None:
        sample = random.Random(cfg.seed).sample(data.train, min(cfg.calibration_examples,
                                                                len(data.train)))
        inputs = encode_examples(artifact.tokenizer, sample, max_length)
        keep = schedule_for_flops(artifact, [e.num_tokens for e in inputs], cfg.target_flops,
                                  first_keep=cfg.first_keep)
        pruning = calibrate_schedule(artifact, inputs, keep)
        calibration = {"examples": len(sample), "keep": keep, "thresholds": pruning.thresholds()}
        if auto is not None:
            calibration["auto"] = auto
        if cfg.temperature is None:
            positive = [t for t in pruning.thresholds() if t > 0] or [1.0 / normalizer]
            artifact.model.pruning.temperature = 0.1 * sum(positive) / len(positive)
        calibration["temperature"] = artifact.model.pruning.temperature
    soft = None
    if cfg.soft_epochs > 0:
        soft = soft_stage(artifact, data.train, cfg.stage(max_length, True, task),
                          teacher).to_dict()
    if inputs is not None:
        if soft is not None:
            # The soft stage decides where to prune; its soft FLOPs are only a guide to the
            # hard rule's. Keep the order of its schedule and scale it back to the target.
            calibration["soft_keep"] = learned = kept_schedule(artifact, inputs)
            keep = schedule_for_flops(artifact, [e.num_tokens for e in inputs],
                                      cfg.target_flops, shape=learned)
            calibrate_schedule(artifact, inputs, keep)
        calibration["hard_start_keep"] = keep
    return SoftResult(str(parent_dir), artifact, teacher, cfg, recorded, task, calibration,
                      inputs, soft)


def prune_hard(start: SoftResult, data: DatasetSplits) -> Artifact:
    """The hard stage from ``prune_soft``'s result (changed in place), the thresholds set
    back to its starting schedule, and the artifact's provenance and figures."""
    artifact, cfg, calibration, inputs = start.artifact, start.cfg, start.calibration, start.inputs
    with weights_on_int8_grid(artifact.model, enabled=cfg.quantize_aware):
        hard = hard_stage(artifact, data.train,
                          cfg.stage(artifact.meta.max_length, False, start.task), start.teacher)
    if inputs is not None:
        # Weights that change under frozen thresholds shift the scores, and kept fractions
        # drift (up, as a rule). Set the thresholds back to the schedule the stage started
        # from, so the FLOPs target holds.
        calibration["hard_end_keep"] = kept_schedule(artifact, inputs)
        pruning = calibrate_schedule(artifact, inputs, calibration["hard_start_keep"])
        calibration["final_thresholds"] = pruning.thresholds()
    tuned = tune_label_thresholds(artifact, data.dev, "compact")
    parent_meta = copy.deepcopy(artifact.meta.provenance)
    artifact.meta.provenance = provenance(
        stage="ltp", parent=start.parent, parent_provenance=parent_meta, dataset=data.name,
        split_sizes=data.sizes(), problem_type=data.problem_type, prune=asdict(start.recorded),
        target_flops=cfg.target_flops, calibration=calibration, soft=start.soft,
        hard=hard.to_dict(), **({"label_thresholds": tuned} if tuned else {}))
    artifact.meta.eval = {"ltp": split_metrics(artifact, data, "compact"),
                          "dense_parent": artifact.meta.eval.get("dense")}
    return artifact


def prune_model(parent_dir: str | Path, data: DatasetSplits, cfg: PruneConfig) -> Artifact:
    """Soft stage (learn thresholds) then hard stage (thresholds frozen) from a parent; a
    multi-label head's label thresholds are then tuned again for the pruned model on dev.

    With ``target_flops``: thresholds calibrated to the target first; the soft stage's
    schedule scaled back to the target before the hard stage; after it, thresholds set back
    to the schedule it started from (``provenance.calibration`` records each step).
    """
    return prune_hard(prune_soft(parent_dir, data, cfg), data)


def prune_seeds(parent_dir: str | Path, data: DatasetSplits, cfg: PruneConfig) -> Artifact:
    """``prune_model`` once per seed of ``cfg.seeds``; the run whose dev figure is the
    median (the lower of the two middle ones for an even count) is returned, with every
    run's dev and test figures, relative FLOPs and the spread in ``eval["seeds"]``.

    One build is one draw: the thresholds learnt and the accuracy they keep move with the
    seed (the order of the data, the calibration sample, dropout), so a figure of one seed
    says little about the next build."""
    if not cfg.seeds:
        return prune_model(parent_dir, data, cfg)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:  # each run on disk, not all in memory at once
        for seed in cfg.seeds:
            log.info("seed %d of %s", seed, cfg.seeds)
            artifact = prune_model(parent_dir, data, replace(cfg, seed=seed, seeds=None))
            ev = artifact.meta.eval["ltp"]
            runs.append({"seed": seed, "dev": ev["dev"]["score"], "test": ev["test"]["score"],
                         "relative_flops": ev["test"]["relative_flops"]})
            save_artifact(artifact, Path(tmp) / str(seed))
            del artifact
        chosen = sorted(runs, key=lambda r: (r["dev"], -r["seed"]))[(len(runs) - 1) // 2]
        artifact = load_artifact(Path(tmp) / str(chosen["seed"]))
    table = runs
    spread = {key: max(r[key] for r in table) - min(r[key] for r in table)
              for key in ("dev", "test", "relative_flops")}
    artifact.meta.eval["seeds"] = {"runs": table, "chosen": chosen["seed"], "spread": spread,
                                   "rule": "median dev figure"}
    artifact.meta.provenance["prune"]["seeds"] = cfg.seeds
    return artifact


def with_overrides(cfg, overrides: dict):
    """Replace dataclass fields from a dict, with a clear error on an unknown key."""
    known = set(cfg.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return replace(cfg, **overrides)

