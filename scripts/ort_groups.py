"""How many inputs one whole-forward call of the ort engine should take, packed one after
another (``OrtEngine(group=...)``, ``PackedForward``): seq/s of batches of 32 (length-sorted,
as ``ltp bench-runtimes`` times them) per group size and precision (``int8-rows``: int8 with
activations per row), timed in turns within one process (a lone input runs the one-input
graph whatever the group); with the accuracy, kept counts (input x layer) and labels each
group size gives against group 1 on every input timed. Writes a markdown table and its JSON.

    python scripts/ort_groups.py models/reviews-minilm-ltp --dataset amazon-food \
        --precisions fp32,int8,int8-rows --out reports/ort-groups-amazon-food
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from ltp.bench.timing import alternate
from ltp.core.artifact import load_artifact
from ltp.core.machine import cpu_name
from ltp.data.encoding import encode_split


def measure(path: str, dataset: str, precisions: list[str], groups: list[int], count: int,
            rounds: int, threads: int) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for precision in precisions:
        artifact = load_artifact(path)
        encoded, labels = encode_split(artifact.tokenizer, dataset, "test", artifact.meta.max_length)
        count = min(count, len(encoded))
        placed = artifact.batches(encoded[:count], 32)
        batches = [b for _, b in placed]
        truth = torch.tensor([labels[i] for index, _ in placed for i in index])
        dtype, _, rows_mode = precision.partition("-")
        engines = {g: artifact.model.set_engine("ort", precision=dtype, threads=threads, group=g,
                                                rows=rows_mode == "rows")
                   for g in groups}

        def batched(engine, batches=batches) -> list:
            return [engine.whole(b.input_ids, b.attention_mask, b.token_type_ids) for b in batches]

        with torch.inference_mode():
            answers = {g: batched(e) for g, e in engines.items()}
            times = alternate({g: (lambda e=e: batched(e)) for g, e in engines.items()}, rounds,
                              warmup={g: (lambda: None) for g in groups})
        base_logits = torch.cat([lg for lg, _ in answers[groups[0]]])
        base_kept = torch.cat([k for _, k in answers[groups[0]]])
        for g in groups:
            logits = torch.cat([lg for lg, _ in answers[g]])
            kept = torch.cat([k for _, k in answers[g]])
            seqs = [count / t for t in times[g]]
            rows.append({
                "precision": precision, "group": g,
                "seq_per_s": statistics.median(seqs), "seq_per_s_range": [min(seqs), max(seqs)],
                "kept_equal": float((kept == base_kept).float().mean()),
                "labels_equal": float((logits.argmax(1) == base_logits.argmax(1)).float().mean()),
                "accuracy": float((logits.argmax(1) == truth).float().mean()),
            })
    return rows


def report(rows: list[dict], meta: dict) -> str:
    lines = [f"# ort engine: inputs per whole-forward call ({meta['dataset']})", "",
             f"`python scripts/ort_groups.py {meta['model']} --dataset {meta['dataset']}`: "
             f"{meta['count']} test inputs in length-sorted batches of 32, {meta['rounds']} "
             f"rounds in turns; {meta['threads']} "
             f"threads; {meta['cpu']}. Agreement is with group 1 (one input a call).", "",
             "| precision | group | seq/s, batch 32 (range) | x group 1 "
             "| accuracy | kept counts = group 1 | labels = group 1 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        one = next(o for o in rows if o["precision"] == r["precision"] and o["group"] == rows[0]["group"])
        lo, hi = r["seq_per_s_range"]
        lines.append(f"| {r['precision']} | {r['group']} | {r['seq_per_s']:.1f} ({lo:.1f}-{hi:.1f}) "
                     f"| {r['seq_per_s'] / one['seq_per_s']:.2f} "
                     f"| {100 * r['accuracy']:.1f} "
                     f"| {100 * r['kept_equal']:.2f}% | {100 * r['labels_equal']:.2f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", default="amazon-food")
    parser.add_argument("--precisions", default="fp32,int8,int8-rows")
    parser.add_argument("--groups", default="1,2,4,8")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    groups = [int(g) for g in args.groups.split(",")]
    rows = measure(args.model, args.dataset, args.precisions.split(","), groups, args.count,
                   args.rounds, args.threads)
    meta = {"model": args.model, "dataset": args.dataset, "count": args.count,
            "rounds": args.rounds, "threads": args.threads, "cpu": cpu_name()}
    text = report(rows, meta)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
