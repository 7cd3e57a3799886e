"""Accuracy against relative FLOPs: LTP against top-k and truncation.

LTP points come from lambdas (the paper's knob) and from relative-FLOPs targets
(calibrated thresholds, budgeted soft stage, hard stage). For every FLOPs target, top-k runs
with the keep schedule the LTP hard stage started from, and the same fine-tune: the two
then differ only in a threshold against a fixed quota per input.

With several ``seeds``, every trained row (LTP, and top-k with the fine-tune) is run once per
seed; the table and the plot give each setting's median over the seeds and their spread
(error bars), since one build is one draw.

Every method starts from the same dense parent and is charged against the same dense
reference; every method gets the last-layer trick (only the classifier token runs the last
feed-forward), the dense parent included (its ``last-layer only`` row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from ltp.bench.sweep_table import write_csv
from ltp.core.artifact import load_artifact
from ltp.core.config import PruningConfig
from ltp.data.datasets import DatasetSplits
from ltp.eval.evaluate import evaluate
from ltp.eval.metrics import decision_agreement
from ltp.train.loop import hard_stage
from ltp.train.stages import PruneConfig, prune_model

log = logging.getLogger(__name__)


@dataclass
class SweepConfig:
    lambdas: list[float]
    topk_targets: list[float]
    truncate_lengths: list[int]
    prune: PruneConfig
    topk_finetune: bool = True  # also top-k followed by the same hard-stage fine-tune
    split: str = "test"
    artifacts: list[Path] = field(default_factory=list)  # LTP artifacts already trained
    flops_targets: list[float] = field(default_factory=list)
    seeds: list[int] | None = None  # trained rows once per seed (None: the prune config's seed)

    def run_seeds(self) -> list[int]:
        return self.seeds or [self.prune.seed]

    def num_rows(self) -> int:
        """Rows a sweep writes: dense twice, then one per run (top-k twice with the fine-tune);
        every trained run once per seed."""
        tuned, n = int(self.topk_finetune), len(self.run_seeds())
        return (2 + len(self.truncate_lengths) + (1 + tuned * n) * len(self.topk_targets)
                + n * len(self.lambdas) + n * (2 + tuned) * len(self.flops_targets)
                + len(self.artifacts))


def _row(method: str, setting: str, ev: dict, seed: int | None = None) -> dict:
    return {"method": method, "setting": setting, "seed": "" if seed is None else seed,
            "accuracy": round(ev["accuracy"], 4),
            "relative_flops": round(ev["relative_flops"], 4),
            "relative_model_flops": round(ev["relative_model_flops"], 4),
            "kept_fraction_per_layer": " ".join(f"{x:.3f}" for x in ev["kept_fraction_per_layer"])}


class _Rows(list):
    """Rows that are written to the CSV as they come, so a cut-short sweep keeps its data.
    A trained row comes with its test decisions: every row of its setting then records how
    often the setting's seeds so far decide alike (``seed_agreement``)."""

    def __init__(self, path: Path | None, bar: tqdm) -> None:
        super().__init__()
        self.path, self.bar = path, bar
        self.decisions: dict[tuple[str, str], list[list]] = {}

    def append(self, row: dict, decisions: list | None = None) -> None:
        if decisions is not None:
            key = (row["method"], row["setting"])
            runs = self.decisions.setdefault(key, [])
            runs.append(decisions)
            if (alike := decision_agreement(runs)) is not None:
                for r in (*self, row):
                    if (r["method"], r["setting"]) == key:
                        r["seed_agreement"] = round(alike, 4)
        super().append(row)
        self.bar.update()
        log.info("sweep row: %s", row)
        if self.path is not None:
            write_csv(self, self.path)


def run_sweep(parent_dir: Path, data: DatasetSplits, cfg: SweepConfig,
              csv_path: Path | None = None, progress: bool = False) -> list[dict]:
    """Every row of ``cfg``, written to ``csv_path`` as it comes; ``progress``: a bar on stderr."""
    with tqdm(total=cfg.num_rows(), desc="sweep", unit="run", disable=not progress,
              dynamic_ncols=True) as bar:
        return _sweep(parent_dir, data, cfg, _Rows(csv_path, bar))


def _sweep(parent_dir: Path, data: DatasetSplits, cfg: SweepConfig, rows: _Rows) -> list[dict]:
    examples = data.split(cfg.split)
    parent = load_artifact(parent_dir)
    rows.append(_row("dense", "no pruning", evaluate(parent, examples, mode="dense")))
    rows.append(_row("dense", "last-layer only", evaluate(parent, examples)))
    for length in cfg.truncate_lengths:
        rows.append(_row("truncation", f"max {length} tokens",
                         evaluate(parent, examples, truncate_to=length)))
    num_layers, normalizer = parent.model.encoder.num_layers, parent.meta.pruning.normalizer
    teacher = parent if cfg.prune.distill > 0 else None

    def trained(method: str, setting: str, artifact, seed: int) -> None:
        """A trained run's row, with its decisions for the agreement of its setting's seeds."""
        ev = evaluate(artifact, examples, decisions=True)
        rows.append(_row(method, setting, ev, seed), ev["decisions"])

    def topk_rows(ratios: list[float], setting: str, seeds: list[int],
                  seed: int | None = None) -> None:
        """Top-k at these keep ratios (``seed``: the LTP run they come from), then with the
        hard stage's fine-tune once per seed of ``seeds``."""
        topk = PruningConfig(num_layers, normalizer, strategy="topk", keep_ratios=ratios)
        parent.model.set_pruning(topk)
        rows.append(_row("top-k", setting, evaluate(parent, examples), seed))
        if not cfg.topk_finetune:
            return
        for s in seeds:  # LTP's hard stage, distillation included (dense teacher)
            tuned = load_artifact(parent_dir)
            tuned.model.set_pruning(topk)
            hard_stage(tuned, data.train,
                       replace(cfg.prune, seed=s).stage(tuned.meta.max_length, soft=False), teacher)
            trained("top-k + fine-tune", setting, tuned, s)

    seeds = cfg.run_seeds()
    for target in cfg.topk_targets:
        topk_rows(PruningConfig.cascade(num_layers, target).keep_ratios, f"cascade to {target}",
                  seeds)
    for lam in cfg.lambdas:
        for seed in seeds:
            pruned = prune_model(parent_dir, data,
                                 replace(cfg.prune, lam=lam, target_flops=None, seed=seed))
            trained("LTP", f"lambda {lam}", pruned, seed)
    for target in cfg.flops_targets:
        for seed in seeds:  # top-k on each run's own schedule, fine-tuned with its seed
            pruned = prune_model(parent_dir, data,
                                 replace(cfg.prune, target_flops=target, seed=seed))
            trained("LTP", _setting(pruned.meta.provenance["prune"]), pruned, seed)
            keep = pruned.meta.provenance["calibration"]["hard_start_keep"]
            topk_rows([*keep, 1.0], f"LTP's schedule for FLOPs {target}", [seed], seed)
    for path in cfg.artifacts:
        pruned = load_artifact(path)
        rows.append(_row("LTP", _setting(pruned.meta.provenance.get("prune", {})),
                         evaluate(pruned, examples)))
    return list(rows)


def _setting(prune: dict) -> str:
    """How an LTP artifact was pruned, in a few words."""
    if prune.get("target_flops") is not None:
        soft = "soft stage" if prune.get("soft_epochs", 1) > 0 else "no soft stage"
        scores = ", median scores" if prune.get("score_norm") == "median" else ""
        return (f"FLOPs target {prune['target_flops']}{scores}, {soft}, "
                f"distill {prune.get('distill', 0)}{_teacher_terms(prune)}")
    return (f"lambda {prune.get('lam', '?')}, {prune.get('regularizer', 'flops')}, "
            f"distill {prune.get('distill', 0)}{_teacher_terms(prune)}")


def _teacher_terms(prune: dict) -> str:
    """What else the parent teaches beside its logits, in a few words."""
    weight, hidden = prune.get("ranking", 0), prune.get("distill_hidden", 0)
    return ((f", ranking {weight} (top {prune.get('ranking_top')})" if weight else "")
            + (f", hidden states {hidden}" if hidden else ""))
