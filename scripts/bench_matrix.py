"""`ltp bench` over batch sizes and precisions (and CUDA when present): one markdown table.

    python scripts/bench_matrix.py models/reviews-minilm-ltp --dataset amazon-food > reports/bench-matrix.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import torch


def run(model: str, dataset: str, device: str, dtype: str, batch: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "app.cli", "bench", model, "--dataset", dataset, "--device",
           device, "--dtype", dtype, "--batch-size", str(batch), "--json", *extra]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("model")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--dtypes", default="fp32,bf16,int8")
    p.add_argument("--max-examples", default="256")
    p.add_argument("--max-length", default="256")
    args = p.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    extra = ["--max-examples", args.max_examples, "--max-length", args.max_length]
    lines = ["| device | dtype | batch | dense seq/s | pruned seq/s | speedup | relative FLOPs "
             "| speedup x FLOPs | pruned GFLOP/s | matmul peak GFLOP/s | fraction of peak "
             "| labels / keep decisions equal to fp32 | max logit diff vs fp32 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for device in devices:
        for dtype in args.dtypes.split(","):
            if dtype == "int8" and device != "cpu":
                continue  # int8 linears are CPU kernels
            for batch in [int(b) for b in args.batch_sizes.split(",")]:
                r = run(args.model, args.dataset, device, dtype, batch, extra)
                agree = (f"{r['label_agreement_vs_fp32'] * 100:.1f}% / "
                         f"{r['keep_agreement_vs_fp32'] * 100:.1f}%")
                lines.append(
                    f"| {r['device_name']} | {dtype} | {batch} | {r['dense_seq_per_s']:.1f} | "
                    f"{r['pruned_seq_per_s']:.1f} | {r['speedup']:.2f} | {r['relative_flops']:.3f} | "
                    f"{r['speedup'] * r['relative_flops']:.2f} | "
                    f"{r['pruned_gflops_per_s']:.0f} | {r['matmul_peak_gflops_per_s']:.0f} | "
                    f"{r['pruned_fraction_of_peak']:.2f} | {agree} | "
                    f"{r['max_logit_diff_vs_fp32']:.3f} |")
                sys.stdout.flush()
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
