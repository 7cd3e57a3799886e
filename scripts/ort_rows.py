"""The ort engine's int8: activations quantised per call (``quantize_dynamic``) against per
row (``scale_rows``), on the same model, inputs and threads.

    python scripts/ort_rows.py models/reviews-minilm-ltp --dataset amazon-food \
        --out reports/ort-rows-amazon-food

Per variant and split (dev: the split the service's accuracy gate reads; test): accuracy,
and agreement with the eager fp32 forward (labels, keep decisions of every token in every
pruning layer, kept counts), each input alone (as the service's whole-forward graph runs
it); then speed, the variants alternating: seq/s on the test split in length-sorted
batches of 32 and batch-1 p50 over its first 100 inputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ltp.bench.offline import BenchConfig, agreement
from ltp.bench.timing import alternate
from ltp.core.artifact import load_artifact
from ltp.core.machine import cpu_name
from ltp.data.encoding import encode_split

VARIANTS = {"per call": False, "per row": True}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    reference = load_artifact(args.model)
    served = {name: load_artifact(args.model) for name in VARIANTS}
    for name, rows in VARIANTS.items():
        served[name].model.set_engine("ort", precision="int8", threads=args.threads, rows=rows)
    splits = {s: encode_split(reference.tokenizer, args.dataset, s, reference.meta.max_length)
              for s in ("dev", "test")}
    one = BenchConfig(batch_size=1, max_examples=10**6)
    result = {"model": args.model, "dataset": args.dataset, "cpu": cpu_name(),
              "threads": args.threads, "torch": torch.__version__, "rows": []}
    for split, (encoded, labels) in splits.items():
        fp32 = agreement(reference, None, encoded, labels, one)
        result["rows"].append({"variant": "eager fp32", "split": split, **fp32})
        for name, artifact in served.items():
            row = agreement(artifact, reference, encoded, labels, one)
            result["rows"].append({"variant": name, "split": split, **row})
            print(json.dumps(result["rows"][-1]), flush=True)
    encoded = splits["test"][0]
    batches = [b for _, b in reference.batches(encoded, 32)]  # the same for every variant
    singles = [b for _, b in reference.batches(encoded[:100], 1)]

    def run(artifact, batches):
        for b in batches:
            artifact.model.run(b, mode="compact")

    def latencies(artifact, singles) -> list[float]:
        out = []
        for b in singles:
            start = time.perf_counter()
            artifact.model.run(b, mode="compact")
            out.append((time.perf_counter() - start) * 1e3)
        return out

    with torch.inference_mode():
        times = alternate({n: (lambda a=a: run(a, batches)) for n, a in served.items()},
                          args.rounds)
        p50 = {n: [] for n in served}
        for _ in range(3):
            for n, a in served.items():
                p50[n].append(statistics.median(latencies(a, singles)))
    result["speed"] = {n: {"seq_per_s": [len(encoded) / t for t in times[n]], "p50_ms_b1": p50[n]}
                       for n in served}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(report(result))
    print(report(result))


def pct(share: float) -> str:
    return f"{100 * share:.1f}"


def report(result: dict) -> str:
    lines = [f"# ort engine int8: activations per call against per row ({result['dataset']})", "",
             f"`python scripts/ort_rows.py {result['model']} --dataset {result['dataset']}`; "
             f"{result['cpu']}, {result['threads']} threads, torch {result['torch']}. Agreement "
             "is with the eager fp32 forward, each input alone; the accuracy gate of the "
             "service reads dev (int8 served where within 0.5 pt of fp32).", "",
             "| variant | split | accuracy | labels = fp32 | keep decisions = fp32 | kept counts "
             "= fp32 |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['variant']} | {r['split']} ({r['accuracy_examples']}) | "
                     f"{pct(r['accuracy'])} | {pct(r['label_agreement_vs_fp32'])}% | "
                     f"{pct(r['keep_agreement_vs_fp32'])}% | {pct(r['kept_counts_equal_vs_fp32'])}% |")
    lines += ["", "Speed, the variants alternating (each value: the rounds in order; batch 1: "
              "median over the first 100 test inputs, three passes).", "",
              "| variant | seq/s, batch 32 | p50 ms, batch 1 |", "|---|---|---|"]
    for n, s in result["speed"].items():
        lines.append(f"| {n} | {', '.join(f'{x:.0f}' for x in s['seq_per_s'])} | "
                     f"{', '.join(f'{x:.2f}' for x in s['p50_ms_b1'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
