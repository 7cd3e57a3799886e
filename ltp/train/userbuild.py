"""From the user's own labelled file to a served pruned model: ``ltp build --data``.

1. Read and check the data (``ltp.data.datasets``, ``ltp.data.checks``): single-label,
   multi-label (a delimited label column or one 0/1 column per label) or regression
   (numeric labels); errors stop here, before any model is loaded.
2. Pick the max length from the texts' token lengths and the training schedule from the data
   size (``ltp.train.stages.schedule_for_data``).
3. Write two recipes, ``NAME-dense.yaml`` (the dense parent) and ``NAME.yaml`` (LTP of it), so
   the build is reproducible and reviewable: ``ltp build models/NAME.yaml --force`` runs it
   again.
4. Build both (``ltp.train.recipes.build``: estimate of the total time first, baselines, weak-model
   check, cards) and report the test figures.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import Counter
from dataclasses import asdict, fields
from pathlib import Path

import yaml

from ltp.core.artifact import resolve_model_path
from ltp.core.heads import MULTI_LABEL, REGRESSION
from ltp.data.checks import check_data
from ltp.data.datasets import Columns, DataError, load_dataset
from ltp.data.encoding import token_lengths
from ltp.train.card import summary
from ltp.train.recipes import RecipeError, build
from ltp.train.stages import schedule_for_data

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_LENGTH_CAP = 256  # an automatic max length never goes above this (cost grows ~ length^2)


def auto_max_length(lengths: list[int], model_max: int, quantile: float = 0.95) -> int:
    """The ``quantile`` of the token lengths, rounded up to a multiple of 32, in [32, cap]."""
    ordered = sorted(lengths)
    at = ordered[min(len(ordered) - 1, math.ceil(quantile * len(ordered)) - 1)]
    return int(min(model_max, MAX_LENGTH_CAP, max(32, 32 * math.ceil(at / 32))))


def _model_max(tokenizer, base_path: Path) -> int:
    import json

    limit = getattr(tokenizer, "model_max_length", 512) or 512
    config = base_path / "config.json"
    if config.is_file():
        positions = json.loads(config.read_text()).get("max_position_embeddings")
        if positions:
            limit = min(limit, positions - (2 if "roberta" in config.read_text() else 0))
    return int(min(limit, 512))


def _defaults_dropped(cfg) -> dict:
    """A config as a dict, minus the fields left at their defaults (a shorter recipe)."""
    default = type(cfg)()
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)
            if getattr(cfg, f.name) != getattr(default, f.name) or f.name in ("lr", "batch_size")}


def write_recipes(models_dir: Path, name: str, data_path: Path, columns: Columns, base: str,
                  finetune_cfg, prune_cfg, force: bool, problem_type: str | None = None
                  ) -> tuple[Path, Path]:
    parent = f"{name}-dense"
    cols = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(columns).items()
            if v is not None}
    common = {"dataset": str(data_path), "columns": cols}
    if problem_type is not None:
        common["problem_type"] = problem_type
    dense = {"name": parent, "description": f"{base} fine-tuned on {data_path.name} (dense parent "
             f"of {name}), written by `ltp build --data`.", **common, "base": str(base),
             "finetune": _defaults_dropped(finetune_cfg)}
    ltp = {"name": name, "description": f"Learned Token Pruning of {parent} to a FLOPs budget, "
           "written by `ltp build --data`.", **common, "parent": parent,
           "prune": _defaults_dropped(prune_cfg)}
    paths = (models_dir / f"{parent}.yaml", models_dir / f"{name}.yaml")
    for path, recipe in zip(paths, (dense, ltp), strict=True):
        text = yaml.safe_dump(recipe, sort_keys=False, width=100)
        if path.is_file() and path.read_text() != text and not force:
            raise RecipeError(f"{path} exists with other settings; use --force to overwrite it "
                              f"(or another --name)")
        path.write_text(text)
    return paths


def label_counts(splits) -> dict[str, int]:
    """Training examples per label (multi-label: positive rows; regression: all rows)."""
    if splits.problem_type == REGRESSION:
        return {splits.labels[0]: len(splits.train)}
    if splits.problem_type == MULTI_LABEL:
        counts = Counter(k for e in splits.train for k in e.label)
    else:
        counts = Counter(e.label for e in splits.train)
    return {label: counts.get(k, 0) for k, label in enumerate(splits.labels)}


def build_from_data(data: str | Path, name: str, columns: Columns | None = None, base: str = "minilm",
                    target_flops: float | str = "auto", max_length: int | None = None,
                    models_dir: str | Path = "models", allow_weak: bool = False,
                    force: bool = False, seed: int = 0, steps: int | None = None,
                    problem_type: str | None = None) -> dict:
    """Check the data, write the two recipes, build them; the test figures as one dict.

    ``problem_type``: None reads single-label data, or multi-label where ``columns`` name
    0/1 label columns or a label delimiter; ``regression`` reads numeric labels."""
    columns = columns or Columns()
    if not NAME.match(name):
        raise RecipeError(f"--name {name!r}: use letters, digits, '.', '_' and '-'")
    data_path = Path(data).resolve()
    if not data_path.exists():
        raise DataError(f"{data}: no such file or folder")
    models = Path(models_dir)
    models.mkdir(parents=True, exist_ok=True)
    splits = load_dataset(str(data_path), columns, problem_type)
    check_data(splits)  # errors now, before any model is loaded; build() logs the warnings
    from transformers import AutoTokenizer

    base_path = resolve_model_path(base)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    lengths = token_lengths(tokenizer, splits.train)
    chosen_length = max_length or auto_max_length(lengths, _model_max(tokenizer, base_path))
    counts = label_counts(splits)
    finetune_cfg, prune_cfg = schedule_for_data(
        len(splits.train), list(counts.values()), chosen_length, seed, splits.problem_type)
    if target_flops != "auto":
        prune_cfg.target_flops = float(target_flops)
        prune_cfg.__post_init__()
    if steps is not None:  # the dense fine-tune's length; the LTP stages take at most as many
        if steps < 1:
            raise RecipeError(f"--steps must be positive, got {steps}")
        finetune_cfg.steps = steps
        finetune_cfg.eval_every = max(1, min(finetune_cfg.eval_every, steps // 10))
        prune_cfg.soft_steps = min(prune_cfg.soft_steps, steps)
        prune_cfg.hard_steps = min(prune_cfg.hard_steps, steps)
    log.info("data %s: %s %s, labels %s; max length %d (%s); %d steps of %d, lr %g, class weights %s",
             splits.name, splits.problem_type, splits.sizes(), counts, chosen_length,
             "given" if max_length else "95th percentile of train token lengths",
             finetune_cfg.steps, finetune_cfg.batch_size, finetune_cfg.lr,
             finetune_cfg.class_weight or "none")
    dense_recipe, ltp_recipe = write_recipes(models, name, data_path, columns, base, finetune_cfg,
                                             prune_cfg, force, problem_type)
    log.info("recipes written: %s, %s", dense_recipe, ltp_recipe)
    start = time.perf_counter()
    artifact = build(ltp_recipe, force=force, allow_weak=allow_weak, force_parents=force)
    report = {"name": name, "artifact": str(models / name), "dense_artifact": str(models / f"{name}-dense"),
              "recipes": [str(dense_recipe), str(ltp_recipe)], "split_sizes": splits.sizes(),
              "labels": splits.labels, "max_length": chosen_length,
              **summary(artifact),
              "estimated_seconds": artifact.meta.provenance.get("estimate", {}).get("seconds"),
              "wall_seconds": round(time.perf_counter() - start, 1)}
    return report
