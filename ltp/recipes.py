"""Model recipes (``models/NAME.yaml``): build an artifact end to end and write its card.

A recipe either fine-tunes a base encoder (``finetune``) or prunes a parent recipe's
artifact with LTP (``parent`` + ``prune``). Built artifacts go to ``models/NAME/``.
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

from ltp.artifact import Artifact, load_artifact, save_artifact
from ltp.data import load_dataset
from ltp.pipeline import FinetuneConfig, PruneConfig, finetune_model, prune_model, with_overrides

log = logging.getLogger(__name__)


class RecipeError(ValueError):
    """A recipe file is missing, malformed or names something unknown."""


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

    @property
    def out_dir(self) -> Path:
        return self.path.parent / self.name


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe")
    raw = yaml.safe_load(path.read_text()) or {}
    allowed = {"name", "dataset", "base", "finetune", "parent", "prune", "description"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RecipeError(f"{path}: unknown key(s) {unknown}")
    for key in ("name", "dataset"):
        if key not in raw:
            raise RecipeError(f"{path}: missing key {key!r}")
    if ("finetune" in raw) == ("prune" in raw):
        raise RecipeError(f"{path}: a recipe has exactly one of 'finetune' or 'prune'")
    try:
        recipe = Recipe(name=raw["name"], dataset=raw["dataset"], path=path,
                        description=raw.get("description", ""))
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


def build(path: str | Path, force: bool = False) -> Artifact:
    """Build a recipe's artifact (and its parent's, when missing); write ``card.md``."""
    recipe = load_recipe(path)
    if recipe.out_dir.joinpath("ltp.json").is_file() and not force:
        log.info("%s exists; use --force to rebuild", recipe.out_dir)
        return load_artifact(recipe.out_dir)
    data = load_dataset(recipe.dataset)
    start = time.perf_counter()
    if recipe.finetune is not None:
        artifact = finetune_model(recipe.base, data, recipe.finetune)
    else:
        parent = recipe.path.parent / recipe.parent
        if not parent.joinpath("ltp.json").is_file():
            build(recipe.path.parent / f"{recipe.parent}.yaml")
        artifact = prune_model(parent, data, recipe.prune)
    artifact.meta.provenance |= {"recipe": recipe.name, "wall_seconds": round(time.perf_counter() - start, 1),
                                 "machine": machine()}
    save_artifact(artifact, recipe.out_dir)
    (recipe.out_dir / "card.md").write_text(model_card(recipe, artifact, data.sizes()))
    log.info("built %s in %.0f s", recipe.out_dir, time.perf_counter() - start)
    return artifact


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
    if recipe.finetune is not None:
        ev = meta.eval["dense"]
        lines += [f"Dense fine-tune of `{recipe.base}`: {asdict(recipe.finetune)}", "",
                  "| split | accuracy |", "|---|---|",
                  *(f"| {s} | {_pct(ev[s]['accuracy'])} |" for s in ("dev", "test"))]
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
    return "\n".join(lines) + "\n"
