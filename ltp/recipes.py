"""Model recipes (``models/NAME.yaml``): build an artifact end to end and write its card.

A recipe either fine-tunes a base encoder (``finetune``) or prunes a parent recipe's
artifact with LTP (``parent`` + ``prune``). Built artifacts go to ``models/NAME/``. User data
names its columns with ``columns: {text: ..., label: ..., pair: ...}``.

Every build checks its data (errors stop it, warnings go into the card), compares the model
with a majority-class and a TF-IDF baseline on the test split, and refuses a dense model that
does not clearly beat them (``WeakModelError``) unless allowed.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml

from ltp.artifact import Artifact, from_classifier, load_artifact, save_artifact
from ltp.baselines import baselines, weak_model
from ltp.data import Columns, DatasetSplits, check_data, length_warning, load_dataset
from ltp.pipeline import (
    AUTO_FLOPS_CANDIDATES,
    AUTO_FLOPS_EXAMPLES,
    MIN_STEPS,
    FinetuneConfig,
    PruneConfig,
    finetune_model,
    prune_model,
    with_overrides,
)
from ltp.precision import MAX_DROP, record_precisions
from ltp.text import encode
from ltp.train import measure_step_seconds, total_steps

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

    @property
    def out_dir(self) -> Path:
        return self.path.parent / self.name


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe")
    raw = yaml.safe_load(path.read_text()) or {}
    allowed = {"name", "dataset", "base", "finetune", "parent", "prune", "description", "columns"}
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
        unknown = sorted(set(columns) - {"text", "label", "pair"})
        if unknown:
            raise RecipeError(f"{path}: unknown column key(s) {unknown}; known: text, label, pair")
        recipe = Recipe(name=raw["name"], dataset=str(raw["dataset"]), path=path,
                        description=raw.get("description", ""), columns=Columns(**columns))
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


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def token_lengths(tokenizer, examples) -> list[int]:
    """Untruncated token counts (special tokens included)."""
    pairs = [e.text_pair for e in examples]
    return [e.num_tokens for e in encode(tokenizer, [e.text for e in examples],
                                         pairs if any(p is not None for p in pairs) else None,
                                         truncate=False)]


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
            # the shipped recipes (0.1 more for the teacher of distillation)
            seconds = (soft * 0.6 * step + hard * (0.45 + (0.1 if cfg.distill else 0)) * step
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
    data = load_dataset(recipe.dataset, recipe.columns)
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
        artifact = prune_model(parent, data, recipe.prune)
    truncation = length_warning(token_lengths(artifact.tokenizer, data.train), artifact.meta.max_length)
    warnings += [truncation] if truncation else []
    artifact.meta.eval["baselines"] = base = baselines(data)
    artifact.meta.eval["data_warnings"] = warnings
    dense_test = (artifact.meta.eval.get("dense") or artifact.meta.eval.get("dense_parent") or {}).get("test")
    weak = weak_model(dense_test, base, _weak_hints(recipe, artifact, data, warnings)) if dense_test else []
    artifact.meta.eval["weak"] = weak
    artifact.meta.provenance |= {"recipe": recipe.name, "wall_seconds": round(time.perf_counter() - start, 1),
                                 "machine": machine()}
    if estimate:
        artifact.meta.provenance["estimate"] = guess
    artifact.path = save_artifact(artifact, recipe.out_dir)
    if recipe.prune is not None:  # the accuracy of each precision, for `ltp serve --dtype auto`
        dev = artifact.meta.eval["ltp"]["dev"]  # fp32, measured by the build on the same split
        fp32 = {k: dev[k] for k in ("accuracy", "examples", "relative_flops")}
        artifact.meta.eval["precision"] = record_precisions(recipe.out_dir, data.dev,
                                                            known={"fp32": fp32})
    (recipe.out_dir / "card.md").write_text(model_card(recipe, artifact, data.sizes()))
    log.info("built %s in %.0f s", recipe.out_dir, time.perf_counter() - start)
    if weak:
        banner = "\n  ".join(weak)
        log.warning("WEAK MODEL %s:\n  %s", recipe.name, banner)
        if recipe.finetune is not None and not allow_weak:
            raise WeakModelError(weak, artifact)
    return artifact


def summary(artifact: Artifact) -> dict:
    """Test-split figures of an artifact: baselines, dense and (for LTP) the pruned model."""
    ev = artifact.meta.eval
    base = ev.get("baselines") or {}
    pick = lambda m: {k: m[k] for k in ("accuracy", "macro_f1", "per_class") if k in m}  # noqa: E731
    dense = (ev.get("dense") or ev.get("dense_parent") or {}).get("test")
    out = {"majority_accuracy": base.get("majority", {}).get("accuracy"),
           "baseline_majority": pick(base["majority"]) if base else None,
           "baseline_tfidf": pick(base["tfidf"]) if base else None,
           "dense": pick(dense) if dense else None, "ltp": None}
    if "ltp" in ev:
        test = ev["ltp"]["test"]
        out["ltp"] = pick(test) | {k: test[k] for k in ("relative_flops", "relative_model_flops",
                                                      "kept_fraction_per_layer")}
        out["target_flops"] = artifact.meta.provenance.get("target_flops")
        auto = (artifact.meta.provenance.get("calibration") or {}).get("auto")
        if auto:
            out["target_flops_reason"] = auto["reason"]
    out["warnings"] = ev.get("data_warnings", [])
    out["weak"] = ev.get("weak", [])
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _kept(ev: dict) -> str:
    return ", ".join(f"{x:.2f}" for x in ev["kept_fraction_per_layer"])


def model_card(recipe: Recipe, artifact: Artifact, sizes: dict) -> str:
    """A markdown card: data, settings, dense vs LTP figures, time and machine."""
    meta, prov = artifact.meta, artifact.meta.provenance
    lines = [f"# {recipe.name}", "", recipe.description or "", "",
             f"- data set: `{recipe.dataset}`, split sizes train / dev / test: "
             f"{sizes['train']} / {sizes['dev']} / {sizes['test']}",
             f"- labels: {', '.join(meta.labels)}; max length {meta.max_length}; "
             f"score normaliser N = {meta.pruning.normalizer}",
             f"- wall time: {prov.get('wall_seconds')} s on {prov.get('machine')}", ""]
    lines += _checks_section(meta.eval)
    if recipe.finetune is not None:
        ev = meta.eval["dense"]
        lines += [f"Dense fine-tune of `{recipe.base}`: {asdict(recipe.finetune)}", "",
                  "| split | accuracy |", "|---|---|",
                  *(f"| {s} | {_pct(ev[s]['accuracy'])} |" for s in ("dev", "test"))]
        lines += _training_section(prov.get("training", {}))
        lines += _baselines_section(meta.eval, ev["test"], None)
        return "\n".join(lines) + "\n"
    ltp_eval, dense = meta.eval["ltp"], meta.eval.get("dense_parent") or {}
    lines += [f"LTP from `{recipe.parent}`: {asdict(recipe.prune)}", "",
              f"Learned thresholds: {', '.join(f'{t:.5f}' for t in meta.pruning.thresholds())}", "",
              "| split | dense accuracy | LTP accuracy | relative FLOPs (paper) | whole model "
              "| kept fraction after each layer |", "|---|---|---|---|---|---|"]
    for s in ("dev", "test"):
        ev, d = ltp_eval[s], dense.get(s, {})
        dense_acc = _pct(d["accuracy"]) if d else "-"
        lines.append(f"| {s} | {dense_acc} | {_pct(ev['accuracy'])} | {ev['relative_flops']:.3f} "
                     f"| {ev['relative_model_flops']:.3f} | {_kept(ev)} |")
    for stage in ("soft", "hard"):
        st = prov.get(stage, {})
        first, last = st.get("first_loss", float("nan")), st.get("last_loss", float("nan"))
        lines.append(f"\n{stage} stage: {st.get('steps')} steps, {st.get('seconds')} s, "
                     f"loss {first:.3f} -> {last:.3f}")
    auto = (prov.get("calibration") or {}).get("auto")
    if auto:
        tried = ", ".join(f"{t['target']} -> {_pct(t['dev_accuracy'])}" for t in auto["tried"]
                          if "dev_accuracy" in t)
        lines += ["", f"FLOPs budget {auto['chosen']} chosen automatically: {auto['reason']}. "
                      f"Tried (budget -> dev accuracy with calibrated thresholds): {tried}."]
    lines += _precision_section(meta.eval.get("precision"))
    lines += _baselines_section(meta.eval, dense.get("test"), ltp_eval["test"])
    return "\n".join(lines) + "\n"


def _precision_section(table: dict | None) -> list[str]:
    """Dev accuracy of the pruned model per precision (what ``--dtype auto`` chooses from)."""
    if not table:
        return []
    lines = ["", "Precision (dev split; `ltp serve --dtype auto` serves the fastest within "
                 f"{MAX_DROP * 100:g} pt of fp32):", "",
             "| precision | accuracy | relative FLOPs | on the building CPU |", "|---|---|---|---|"]
    lines += [f"| {name} | {_pct(row['accuracy'])} | {row['relative_flops']:.3f} | "
              f"{row.get('native', '-')} |" for name, row in table.items()]
    return lines


def _checks_section(ev: dict) -> list[str]:
    lines = []
    if ev.get("weak"):
        lines += ["**WARNING: the dense model is not clearly better than the baselines.**", "",
                  *(f"- {r}" for r in ev["weak"]), ""]
    if ev.get("data_warnings"):
        lines += ["Data warnings:", "", *(f"- {w}" for w in ev["data_warnings"]), ""]
    return lines


def _training_section(training: dict) -> list[str]:
    if not training.get("dev_history"):
        return []
    return ["", f"Training: {training['steps']} of {training['planned_steps']} planned steps "
                f"({'stopped early' if training['stopped_early'] else 'ran to the end'}); "
                f"best dev checkpoint at step {training['best_step']} restored."]


def _baselines_section(ev: dict, dense: dict | None, ltp_test: dict | None) -> list[str]:
    base = ev.get("baselines")
    if not base:
        return []
    rows = [("majority class", base["majority"], f"always `{base['majority']['label']}`"),
            ("TF-IDF + logistic regression", base["tfidf"],
             f"1-2 grams, balanced class weights, C={base['tfidf']['C']} (chosen on dev)")]
    if dense:
        rows.append(("dense", dense, "relative FLOPs 1.000"))
    if ltp_test:
        rows.append(("LTP", ltp_test, f"relative FLOPs {ltp_test['relative_flops']:.3f}"))
    lines = ["", "Test split against baselines:", "", "| model | accuracy | macro-F1 | notes |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {_pct(m['accuracy'])} | {_pct(m['macro_f1'])} | {note} |"
              for name, m, note in rows]
    with_classes = [(name, m) for name, m, _ in rows if m.get("per_class")]
    labels = list(with_classes[0][1]["per_class"]) if with_classes else []
    if labels:
        lines += ["", "Per class (precision / recall), test split:", "",
                  "| model | " + " | ".join(f"{lab} (n={with_classes[0][1]['per_class'][lab]['support']})"
                                          for lab in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for name, m in with_classes:
            cells = [f"{_pct(m['per_class'][lab]['precision'])} / {_pct(m['per_class'][lab]['recall'])}"
                     for lab in labels]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
