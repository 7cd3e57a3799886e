"""Pruning at layer 0 (``PruneConfig.first_keep``), measured at equal FLOPs.

Two measurements, each appended as JSON lines to ``--out`` and written as one markdown table:

* ``calibrated`` (``calibrated.jsonl``): no training. The parent's thresholds calibrated
  (600 training inputs) to each budget of ``--targets`` with layer 0 keeping
  ``--first-keep`` of the tokens in the starting schedule (scaled to the budget with the rest,
  ``ltp.train.calibrate.schedule_for_flops``; 1 is the paper's schedule, where layer 0 never
  prunes); dev and test accuracy of the compact forward.
* ``trained`` (``trained.jsonl``): a recipe's soft and hard stages at ``--target-flops``
  with each ``--first-keep``, per seed (``--soft-epochs 0`` skips the soft stage: the
  calibrated schedule goes straight into the hard stage).

    python scripts/first_keep.py calibrated models/reviews-minilm --dataset amazon-food \
        --targets 0.48,0.4,0.35,0.3 --first-keep 1,0.8,0.6 --out reports/first-keep-amazon-food
    python scripts/first_keep.py trained models/reviews-minilm-ltp-fast.yaml \
        --target-flops 0.35 --first-keep 0.8 --seeds 0,1,2 --out reports/first-keep-amazon-food
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import replace
from pathlib import Path

from ltp.core.artifact import load_artifact
from ltp.core.config import PruningConfig
from ltp.core.machine import cpu_name
from ltp.data.datasets import load_dataset
from ltp.data.encoding import encode_examples
from ltp.eval.evaluate import evaluate
from ltp.train.calibrate import calibrate_schedule, schedule_for_flops
from ltp.train.recipes import load_recipe
from ltp.train.stages import prune_hard, prune_soft


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def calibrated(args: argparse.Namespace, log) -> None:
    artifact = load_artifact(args.parent)
    data = load_dataset(args.dataset)
    enc, meta = artifact.model.encoder, artifact.meta
    artifact.model.set_pruning(PruningConfig(num_layers=enc.num_layers,
                                             normalizer=meta.pruning.normalizer,
                                             final_threshold=0.0, score_norm=args.score_norm))
    sample = random.Random(0).sample(data.train, min(600, len(data.train)))
    inputs = encode_examples(artifact.tokenizer, sample, meta.max_length)
    lengths = [e.num_tokens for e in inputs]
    for target in floats(args.targets):
        for first in floats(args.first_keep):
            keep = schedule_for_flops(artifact, lengths, target, first_keep=first)
            calibrate_schedule(artifact, inputs, keep)
            dev, test = (evaluate(artifact, data.split(s), mode="compact") for s in ("dev", "test"))
            row = {"dataset": args.dataset, "target": target, "first_keep": first,
                   "keep": [round(k, 3) for k in keep], "dev": dev["score"], "test": test["score"],
                   "relative_flops": test["relative_flops"],
                   "kept": test["kept_fraction_per_layer"]}
            log(row)


def trained(args: argparse.Namespace, log) -> None:
    recipe = load_recipe(args.recipe)
    parent = str(recipe.path.parent / recipe.parent)
    data = load_dataset(recipe.dataset)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for first in floats(args.first_keep):
            cfg = replace(recipe.prune, target_flops=args.target_flops, seeds=None, seed=seed,
                          first_keep=first,
                          **({} if args.soft_epochs is None else {"soft_epochs": args.soft_epochs}))
            began = time.perf_counter()
            artifact = prune_hard(prune_soft(parent, data, cfg), data)
            ev, calibration = artifact.meta.eval["ltp"], artifact.meta.provenance["calibration"]
            log({"recipe": args.recipe, "dataset": recipe.dataset, "target": args.target_flops,
                 "first_keep": first, "soft_epochs": cfg.soft_epochs, "seed": seed,
                 "test": ev["test"]["score"], "dev": ev["dev"]["score"],
                 "relative_flops": ev["test"]["relative_flops"],
                 "kept": ev["test"]["kept_fraction_per_layer"],
                 "start_keep": calibration["keep"], "soft_keep": calibration.get("soft_keep"),
                 "dense_test": artifact.meta.eval["dense_parent"]["test"]["score"],
                 "seconds": round(time.perf_counter() - began)})


def table(out: Path, cpu: str) -> None:
    def rows(name: str) -> list[dict]:
        path = out / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    lines = ["# Pruning at layer 0 (`first_keep`)", "",
             f"`python scripts/first_keep.py` (its docstring gives the commands); {cpu}, "
             "2 threads. `first_keep` 1 is the paper's schedule: layer 0 never prunes.", ""]
    cal = rows("calibrated.jsonl")
    if cal:
        lines += ["## Calibrated thresholds, no training", "",
                  "| data set | budget | first_keep | starting keep schedule | test | dev | "
                  "relative FLOPs |", "|---|---|---|---|---|---|---|"]
        for r in cal:
            lines.append(f"| {r['dataset']} | {r['target']:.2f} | {r['first_keep']:g} | "
                         f"{' '.join(f'{k:.2f}' for k in r['keep'])} | {100 * r['test']:.1f} | "
                         f"{100 * r['dev']:.1f} | {r['relative_flops']:.3f} |")
        lines.append("")
    done = rows("trained.jsonl")
    if done:
        lines += ["## Soft and hard stages", "",
                  "| recipe | budget | first_keep | soft epochs | test, by seed | test median | "
                  "test spread | dev median | relative FLOPs | kept after each layer (first seed) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        arms = sorted({(r["recipe"], r["target"], r["first_keep"], r["soft_epochs"]) for r in done})
        for recipe, target, first, soft in arms:
            mine = sorted((r for r in done if (r["recipe"], r["target"], r["first_keep"],
                                                r["soft_epochs"]) == (recipe, target, first, soft)),
                          key=lambda r: r["seed"])
            tests = " / ".join(f"{100 * r['test']:.1f} ({r['seed']})" for r in mine)
            flops = [r["relative_flops"] for r in mine]
            lines.append(
                f"| `{recipe}` | {target:.2f} | {first:g} | {soft:g} | {tests} | "
                f"{100 * statistics.median(r['test'] for r in mine):.1f} | "
                f"{100 * (max(r['test'] for r in mine) - min(r['test'] for r in mine)):.1f} | "
                f"{100 * statistics.median(r['dev'] for r in mine):.1f} | "
                f"{min(flops):.3f}-{max(flops):.3f} | "
                f"{' '.join(f'{k:.2f}' for k in mine[0].get('kept') or []) or '-'} |")
        lines.append(f"\nDense parent test {100 * done[0]['dense_test']:.1f}.")
        for source in sorted({r["source"] for r in done if r.get("source")}):
            lines.append(f"Rows recorded from {source} (the same stages and settings, run "
                         "there) carry a `source` field in `trained.jsonl`.")
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("calibrated", help="calibrated thresholds only, no training")
    c.add_argument("parent", help="a dense artifact")
    c.add_argument("--dataset", required=True)
    c.add_argument("--targets", default="0.48,0.4,0.35,0.3")
    c.add_argument("--score-norm", default="median")
    t = sub.add_parser("trained", help="a recipe's soft and hard stages")
    t.add_argument("recipe", help="an LTP recipe (models/*.yaml with a 'prune' key)")
    t.add_argument("--target-flops", type=float, default=0.35)
    t.add_argument("--seeds", default="0,1,2")
    t.add_argument("--soft-epochs", type=float, default=None, help="default: the recipe's")
    for q in (c, t):
        q.add_argument("--first-keep", default="1,0.8")
        q.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(row: dict) -> None:
        with open(out / f"{args.what}.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    (calibrated if args.what == "calibrated" else trained)(args, log)
    table(out, cpu_name())


if __name__ == "__main__":
    main()
