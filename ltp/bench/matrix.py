"""`ltp bench` over batch sizes and precisions (and CUDA when present): one markdown table.

    python -m ltp.bench.matrix models/reviews-minilm-ltp --dataset amazon-food > reports/bench-matrix.md

Each cell is its own `ltp bench` process (``python -m ltp.cli bench --json``), so one
precision's kernels, threads and heap do not carry into the next.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

HEADER = ["| device | dtype | batch | dense seq/s | pruned seq/s | speedup | relative FLOPs "
          "| speedup x FLOPs | pruned GFLOP/s | matmul peak GFLOP/s | fraction of peak "
          "| labels / keep decisions equal to fp32 | max logit diff vs fp32 |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]


def bench(model: str, dataset: str, device: str, dtype: str, batch: int, extra: list[str]) -> dict:
    """One cell: `ltp bench --json` in a process of its own."""
    cmd = [sys.executable, "-m", "ltp.cli", "bench", model, "--dataset", dataset, "--device",
           device, "--dtype", dtype, "--batch-size", str(batch), "--json", *extra]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def cells(devices: list[str], dtypes: list[str], batch_sizes: list[int]) -> list[tuple[str, str, int]]:
    """(device, dtype, batch) in table order; int8 only on the CPU (its linears are CPU kernels)."""
    return [(device, dtype, batch) for device in devices for dtype in dtypes
            for batch in batch_sizes if dtype != "int8" or device == "cpu"]


def table_row(dtype: str, batch: int, r: dict) -> str:
    """One cell's figures; speedup x FLOPs is 1 where the time falls as the FLOPs do."""
    agree = f"{r['label_agreement_vs_fp32'] * 100:.1f}% / {r['keep_agreement_vs_fp32'] * 100:.1f}%"
    return (f"| {r['device_name']} | {dtype} | {batch} | {r['dense_seq_per_s']:.1f} | "
            f"{r['pruned_seq_per_s']:.1f} | {r['speedup']:.2f} | {r['relative_flops']:.3f} | "
            f"{r['speedup'] * r['relative_flops']:.2f} | {r['pruned_gflops_per_s']:.0f} | "
            f"{r['matmul_peak_gflops_per_s']:.0f} | {r['pruned_fraction_of_peak']:.2f} | {agree} | "
            f"{r['max_logit_diff_vs_fp32']:.3f} |")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ltp.bench.matrix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--dtypes", default="fp32,bf16,int8")
    p.add_argument("--max-examples", default="256")
    p.add_argument("--max-length", default="256")
    p.add_argument("--rounds", default="5", help="timed rounds a cell")
    return p


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    extra = ["--split", args.split, "--max-examples", args.max_examples, "--max-length",
             args.max_length, "--rounds", args.rounds]
    lines = list(HEADER)
    for device, dtype, batch in cells(devices, args.dtypes.split(","),
                                      [int(b) for b in args.batch_sizes.split(",")]):
        lines.append(table_row(dtype, batch, bench(args.model, args.dataset, device, dtype,
                                                   batch, extra)))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
