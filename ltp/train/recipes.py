"""Model recipes (``models/NAME.yaml``): build an artifact end to end and write its card.

A recipe either fine-tunes a base encoder (``finetune``) or prunes a parent recipe's
artifact with LTP (``parent`` + ``prune``). Built artifacts go to ``models/NAME/``. User data
names its columns with ``columns: {text: ..., label: ..., pair: ...}``; multi-label data
adds ``labels: [a, b, ...]`` (one 0/1 column per label) or ``delimiter: "|"`` (several
labels in the label column), and ``problem_type: regression`` reads numeric labels.

Every build checks its data (errors stop it, warnings go into the card), compares the model
with a majority-class and a TF-IDF baseline on the test split, and refuses a dense model that
does not clearly beat them (``WeakModelError``) unless allowed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ltp.core.artifact import Artifact, from_classifier, load_artifact, save_artifact
from ltp.core.heads import check_problem_type
from ltp.core.machine import describe
from ltp.data.checks import check_data, length_warning
from ltp.data.datasets import Columns, DatasetSplits, load_dataset
from ltp.data.encoding import token_lengths
from ltp.eval.precisions import precision_row, record_precisions
from ltp.train.baselines import baselines, weak_model
from ltp.train.card import model_card
from ltp.train.loop import measure_step_seconds, total_steps
from ltp.train.stages import (
    AUTO_FLOPS_CANDIDATES,
    AUTO_FLOPS_EXAMPLES,
    MIN_STEPS,
    FinetuneConfig,
    PruneConfig,
    finetune_model,
    prune_seeds,
    with_overrides,
)

log = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe file is missing, malformed or names something unknown."""


class WeakModelError(RuntimeError):
    """The dense model is not clearly better than the baselines; the artifact is written."""

    def __init__(self, reasons: list[str], artifact: Artifact) -> None:
        super().__init__("; ".join(reasons))
        self.reasons, self.artifact = reasons, artifact


@dataclass
class Recipe:
    name: str
    dataset: str
    path: Path
    base: str | None = None
    finetune: FinetuneConfig | None = None
    parent: str | None = None
    prune: PruneConfig | None = None
    description: str = ""
    columns: Columns = Columns()
    # user data: None (single-label, or multi-label when the columns say so) or one of
    # ltp.core.heads.PROBLEM_TYPES; a built-in data set has its own
    problem_type: str | None = None

    @property
    def out_dir(self) -> Path:
        return self.path.parent / self.name


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe")
    raw = yaml.safe_load(path.read_text()) or {}
    allowed = {"name", "dataset", "base", "finetune", "parent", "prune", "description", "columns",
               "problem_type"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RecipeError(f"{path}: unknown key(s) {unknown}")
    for key in ("name", "dataset"):
        if key not in raw:
            raise RecipeError(f"{path}: missing key {key!r}")
    if ("finetune" in raw) == ("prune" in raw):
        raise RecipeError(f"{path}: a recipe has exactly one of 'finetune' or 'prune'")
    try:
        columns = raw.get("columns") or {}
        known = {"text", "label", "pair", "labels", "delimiter"}
        unknown = sorted(set(columns) - known)
        if unknown:
            raise RecipeError(f"{path}: unknown column key(s) {unknown}; known: {sorted(known)}")
        problem_type = raw.get("problem_type")
        if problem_type is not None:
            check_problem_type(problem_type)
        recipe = Recipe(name=raw["name"], dataset=str(raw["dataset"]), path=path,
                        description=raw.get("description", ""), columns=Columns(**columns),
                        problem_type=problem_type)
        if "finetune" in raw:
            recipe.base = raw.get("base") or "minilm"
            recipe.finetune = with_overrides(FinetuneConfig(), raw["finetune"] or {})
        else:
            if "parent" not in raw:
                raise RecipeError(f"{path}: a 'prune' recipe needs a 'parent'")
            recipe.parent = raw["parent"]
            recipe.prune = with_overrides(PruneConfig(), raw["prune"] or {})
    except ValueError as exc:
        raise RecipeError(f"{path}: {exc}") from exc
    return recipe


def _plan(recipe: Recipe, force: bool, force_parents: bool = False) -> list[Recipe]:
    """The recipes a build runs, parents first."""
    plan = [recipe]
    while plan[0].prune is not None:
        parent = plan[0].path.parent / plan[0].parent
        if parent.joinpath("ltp.json").is_file() and not force_parents:
            break
        plan.insert(0, load_recipe(plan[0].path.parent / f"{plan[0].parent}.yaml"))
    if recipe.out_dir.joinpath("ltp.json").is_file() and not force:
        return []
    return plan


def estimate_seconds(plan: list[Recipe], data: DatasetSplits) -> dict:
    """Measured seconds of one training step on this machine x the plan's steps, with the
    evaluations, calibrations and baselines around them."""
    first = plan[0]
    if first.finetune is not None:
        artifact = from_classifier(first.base, labels=data.labels, max_length=first.finetune.max_length)
        batch, max_length = first.finetune.batch_size, first.finetune.max_length
    else:
        artifact = load_artifact(first.path.parent / first.parent)
        batch, max_length = first.prune.batch_size, artifact.meta.max_length
    step = 1.15 * measure_step_seconds(artifact, data.train, batch, max_length)  # + optimiser
    per_example = step / 3 / batch  # a forward alone, one example
    n_train, n_dev, n_eval = len(data.train), len(data.dev), len(data.dev) + len(data.test)
    stages, total = {}, 5.0 + 1e-4 * n_train  # baselines
    for recipe in plan:
        if recipe.finetune is not None:
            cfg = recipe.finetune
            steps = total_steps(n_train, cfg.train())
            evals = steps // cfg.eval_every + 1 if cfg.eval_every else 0
            seconds = steps * step + (evals * n_dev + n_eval) * per_example
        else:
            cfg = recipe.prune
            has_soft = cfg.soft_epochs or cfg.soft_steps
            soft = total_steps(n_train, cfg.stage(max_length, True)) if has_soft else 0
            hard = total_steps(n_train, cfg.stage(max_length, False))
            calib = 0.0
            if cfg.target_flops is not None:  # three calibrations of the sample, 5 passes each
                calib = 3 * 5 * min(cfg.calibration_examples, n_train) * per_example
            if cfg.target_flops == "auto":  # about half the candidates, each calibrated + dev
                tries = (len(AUTO_FLOPS_CANDIDATES) + 1) // 2
                calib += tries * (5 * min(AUTO_FLOPS_EXAMPLES, n_train) + n_dev) * per_example
            # the LTP stages run fewer tokens than dense: about 0.6 and 0.45 of a dense step on
            # the shipped recipes (0.1 more for the teacher of distillation or of ranking)
            teacher = 0.1 if cfg.ranking else 0.0
            seconds = len(cfg.seeds or [cfg.seed]) * (
                soft * (0.6 + teacher) * step
                + hard * (0.45 + (0.1 if cfg.distill or cfg.distill_hidden else 0)) * step
                + calib + n_eval * per_example)
        stages[recipe.name] = round(seconds)
        total += seconds
    return {"seconds": round(total), "step_seconds": round(step, 3), "batch_size": batch,
            "max_length": max_length, "stages": stages}


def _weak_hints(recipe: Recipe, artifact: Artifact, data: DatasetSplits, warnings: list[str]) -> list[str]:
    hints = []
    training = artifact.meta.provenance.get("training", {})
    steps = training.get("steps")
    if steps is not None and steps < MIN_STEPS:
        hints.append(f"only {steps} optimiser steps (small data sets need {MIN_STEPS} or more; "
                     "use the step schedule of `ltp build --data`)")
    hints += [f"{w}: raise the max length" for w in warnings if "truncated" in w]
    hints += [w for w in warnings if "fewer than" in w]
    return hints


def build(path: str | Path, force: bool = False, allow_weak: bool = False,
          estimate: bool = True, force_parents: bool = False) -> Artifact:
    """Build a recipe's artifact (and its parent's, when missing); write ``card.md``.

    Data errors stop the build before training; data warnings, the baselines and (for LTP)
    the dense parent's figures go into ``ltp.json``'s ``eval`` and the card. A dense model that
    is not clearly better than the baselines raises ``WeakModelError`` (after writing it)
    unless ``allow_weak``. ``force_parents`` rebuilds the parents too.
    """
    recipe = load_recipe(path)
    if recipe.out_dir.joinpath("ltp.json").is_file() and not force:
        log.info("%s exists; use --force to rebuild", recipe.out_dir)
        return load_artifact(recipe.out_dir)
    data = load_dataset(recipe.dataset, recipe.columns, recipe.problem_type)
    warnings = check_data(data)
    for w in warnings:
        log.warning("data: %s", w)
    if estimate:
        plan = _plan(recipe, force, force_parents)
        guess = estimate_seconds(plan, data)
        log.info("estimated build time: about %.0f min (%s; %.2f s per training step of %d "
                 "examples measured on this machine)", guess["seconds"] / 60,
                 ", ".join(f"{k} {v} s" for k, v in guess["stages"].items()),
                 guess["step_seconds"], guess["batch_size"])
    start = time.perf_counter()
    if recipe.finetune is not None:
        artifact = finetune_model(recipe.base, data, recipe.finetune)
    else:
        parent = recipe.path.parent / recipe.parent
        if force_parents or not parent.joinpath("ltp.json").is_file():
            build(recipe.path.parent / f"{recipe.parent}.yaml", force=force_parents,
                  allow_weak=allow_weak, estimate=False, force_parents=force_parents)
        artifact = prune_seeds(parent, data, recipe.prune)
    truncation = length_warning(token_lengths(artifact.tokenizer, data.train), artifact.meta.max_length)
    warnings += [truncation] if truncation else []
    artifact.meta.eval["baselines"] = base = baselines(data)
    artifact.meta.eval["data_warnings"] = warnings
    dense_test = (artifact.meta.eval.get("dense") or artifact.meta.eval.get("dense_parent") or {}).get("test")
    weak = weak_model(dense_test, base, _weak_hints(recipe, artifact, data, warnings)) if dense_test else []
    artifact.meta.eval["weak"] = weak
    artifact.meta.provenance |= {"recipe": recipe.name, "wall_seconds": round(time.perf_counter() - start, 1),
                                 "machine": describe()}
    if estimate:
        artifact.meta.provenance["estimate"] = guess
    artifact.path = save_artifact(artifact, recipe.out_dir)
    # the accuracy of each precision, for `ltp serve --dtype auto`: a dense model is served
    # too (a parent beside its LTP model); fp32 is the build's own dev figure, same split
    dev = artifact.meta.eval["ltp" if recipe.prune is not None else "dense"]["dev"]
    artifact.meta.eval["precision"] = record_precisions(recipe.out_dir, data.dev,
                                                        known={"fp32": precision_row(dev)})
    (recipe.out_dir / "card.md").write_text(model_card(recipe, artifact, data.sizes()))
    log.info("built %s in %.0f s", recipe.out_dir, time.perf_counter() - start)
    if weak:
        banner = "\n  ".join(weak)
        log.warning("WEAK MODEL %s:\n  %s", recipe.name, banner)
        if recipe.finetune is not None and not allow_weak:
            raise WeakModelError(weak, artifact)
    return artifact
