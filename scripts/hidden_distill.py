"""Hidden-state distillation in the hard stage, measured paired: for each seed one soft stage,
then one hard stage per weight of ``distill_hidden`` from that same starting point, so that
the weights differ and nothing else (calibration sample, soft stage, data order, dropout).
The settings are a recipe's (its parent, data set and prune keys), at the budget asked.

Measured: test and dev accuracy and relative FLOPs (paper formula) of each (seed, weight),
appended as JSON lines to ``runs.jsonl`` in ``--out``, and a markdown table of every row
there (runs of several invocations together) with the median over seeds of each weight.

    python scripts/hidden_distill.py models/reviews-minilm-ltp-fast.yaml \
        --target-flops 0.35 --weights 0,1 --seeds 0,1,2 \
        --out reports/hidden-distill-amazon-food
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from ltp.core.machine import cpu_name
from ltp.data.datasets import load_dataset
from ltp.train.recipes import load_recipe
from ltp.train.stages import prune_hard, prune_soft


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", help="an LTP recipe (models/*.yaml with a 'prune' key)")
    p.add_argument("--target-flops", type=float, default=0.35)
    p.add_argument("--weights", default="0,1", help="distill_hidden weights, comma-separated")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    recipe = load_recipe(args.recipe)
    args.parent = str(recipe.path.parent / recipe.parent)
    args.dataset = recipe.dataset
    data = load_dataset(recipe.dataset)
    # the teacher is loaded once for every weight: the soft stage's settings ask for it
    base = replace(recipe.prune, target_flops=args.target_flops, seeds=None,
                   distill_hidden=max(weights))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "runs.jsonl", "a") as log:
        for seed in seeds:
            start = prune_soft(args.parent, data, replace(base, seed=seed))
            for weight in weights:
                run = start.branch(distill_hidden=weight)
                began = time.perf_counter()
                artifact = prune_hard(run, data)
                ev = artifact.meta.eval["ltp"]
                row = {"seed": seed, "distill_hidden": weight, "test": ev["test"]["score"],
                       "dev": ev["dev"]["score"],
                       "relative_flops": ev["test"]["relative_flops"],
                       "hard_seconds": round(time.perf_counter() - began, 1),
                       "hard_last_loss": artifact.meta.provenance["hard"]["last_loss"],
                       "dense_test": artifact.meta.eval["dense_parent"]["test"]["score"]}
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(json.dumps(row), flush=True)
                del artifact, run
            del start
    every = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    write_table(out, every, args, cpu_name())


def write_table(out: Path, rows: list[dict], args: argparse.Namespace, cpu: str) -> None:
    lines = [f"# Hidden-state distillation in the hard stage ({args.dataset}, target "
             f"{args.target_flops})", "",
             f"`python scripts/hidden_distill.py {args.recipe} "
             f"--target-flops {args.target_flops} --weights W --seeds S` (every row of "
             f"`runs.jsonl`); {cpu}, 2 threads. One soft stage per seed, one hard stage per "
             f"weight from it "
             f"(the recipe's settings otherwise; parent `{args.parent}`, dense test "
             f"{100 * rows[0]['dense_test']:.1f}).", "",
             "| distill_hidden | test, by seed | test median | dev median | test - weight 0, "
             "same seed | relative FLOPs |",
             "|---|---|---|---|---|---|"]
    plain = {r["seed"]: r for r in rows if r["distill_hidden"] == 0}
    for weight in sorted({r["distill_hidden"] for r in rows}):
        mine = sorted((r for r in rows if r["distill_hidden"] == weight), key=lambda r: r["seed"])
        tests = " / ".join(f"{100 * r['test']:.1f} ({r['seed']})" for r in mine)
        gains = [100 * (r["test"] - plain[r["seed"]]["test"]) for r in mine if r["seed"] in plain]
        gain = " / ".join(f"{g:+.1f}" for g in gains) if weight else "-"
        lines.append(
            f"| {weight:g} | {tests} | {100 * statistics.median(r['test'] for r in mine):.1f} | "
            f"{100 * statistics.median(r['dev'] for r in mine):.2f} | {gain} | "
            f"{min(r['relative_flops'] for r in mine):.3f}-"
            f"{max(r['relative_flops'] for r in mine):.3f} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
