"""Offline benchmark: dense and compact forward on the same inputs, in one process, alternating."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ltp.artifact import Artifact
from ltp.model import ForwardOutput
from ltp.text import Batch, Encoded, length_sorted_batches, pad_batch


@dataclass
class BenchConfig:
    batch_size: int = 32
    max_length: int = 128
    min_tokens: int = 0  # keep only inputs at least this long (after truncation)
    max_examples: int = 512
    rounds: int = 5  # timed rounds per mode, alternating
    latency_examples: int = 32  # inputs timed one at a time for batch-1 latency
    layout: str = "packed"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def select_inputs(encoded: list[Encoded], cfg: BenchConfig) -> list[Encoded]:
    """Inputs at least ``min_tokens`` long, first ``max_examples`` of them."""
    chosen = [e for e in encoded if e.num_tokens >= cfg.min_tokens][: cfg.max_examples]
    if not chosen:
        raise ValueError(f"no input has at least {cfg.min_tokens} tokens")
    return chosen


def _timed(run: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def _forward_all(artifact: Artifact, batches: list[Batch], mode: str, layout: str):
    model = artifact.model
    outputs = []
    for b in batches:
        outputs.append(model(b.input_ids, b.attention_mask, b.token_type_ids, mode, layout))
    return outputs


def _hf_all(artifact: Artifact, batches: list[Batch]) -> None:
    for b in batches:
        artifact.model.hf(input_ids=b.input_ids, attention_mask=b.attention_mask,
                          token_type_ids=b.token_type_ids)


def _alternate(runs: dict[str, Callable[[], None]], rounds: int, device) -> dict[str, list[float]]:
    """Time each run ``rounds`` times, interleaved so drift hits all of them alike."""
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(_timed(run, device))
    return times


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype, size: int = 2048,
                       repeats: int = 10) -> float:
    """Best GFLOP/s of a square matrix multiply: the practical ceiling of this device."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def flops_summary(outputs: list[ForwardOutput]) -> dict:
    """Relative FLOPs (paper formula and whole model) and mean kept fraction per layer."""
    n_in = torch.cat([o.input_tokens for o in outputs]).double()
    kept = torch.cat([o.kept_tokens for o in outputs]).double()
    total = {k: float(sum(getattr(o, k).sum() for o in outputs))
             for k in ("flops", "flops_dense", "model_flops", "model_flops_dense")}
    return {
        "relative_flops": total["flops"] / total["flops_dense"],
        "relative_model_flops": total["model_flops"] / total["model_flops_dense"],
        "kept_fraction_per_layer": [round(float(x), 4) for x in kept.sum(0) / n_in.sum()],
        "mean_input_tokens": float(n_in.mean()),
        "examples": int(n_in.numel()),
    }


def run_bench(artifact: Artifact, encoded: list[Encoded], cfg: BenchConfig) -> dict:
    """Throughput at ``cfg.batch_size`` and latency at batch 1, dense vs compact (and raw HF)."""
    device = artifact.device
    pad_id = artifact.tokenizer.pad_token_id
    inputs = select_inputs(encoded, cfg)
    groups = length_sorted_batches(inputs, cfg.batch_size)
    batches = [pad_batch([inputs[i] for i in g], pad_id).to(device) for g in groups]
    singles = [pad_batch([e], pad_id).to(device) for e in inputs[: cfg.latency_examples]]
    layout = cfg.layout

    with torch.inference_mode():
        pruned_outputs = _forward_all(artifact, batches, "compact", layout)
        throughput = _alternate({
            "dense": lambda: _forward_all(artifact, batches, "dense", layout),
            "pruned": lambda: _forward_all(artifact, batches, "compact", layout),
            "hf": lambda: _hf_all(artifact, batches),
        }, cfg.rounds, device)
        latency = _alternate({
            "dense": lambda: _forward_all(artifact, singles, "dense", layout),
            "pruned": lambda: _forward_all(artifact, singles, "compact", layout),
        }, cfg.rounds, device)

    n = len(inputs)
    best = {k: min(v) for k, v in throughput.items()}
    executed = float(sum(o.model_flops.sum() for o in pruned_outputs))  # compact, whole model
    dense_executed = float(sum(o.model_flops_dense.sum() for o in pruned_outputs))
    dtype = next(artifact.model.hf.parameters()).dtype
    peak = matmul_peak_gflops(device, dtype)
    spread = {k: (max(v) - min(v)) / min(v) for k, v in throughput.items()}
    lat = {k: statistics.median(v) / len(singles) * 1e3 for k, v in latency.items()}
    return {
        "dense_seq_per_s": n / best["dense"],
        "pruned_seq_per_s": n / best["pruned"],
        "hf_seq_per_s": n / best["hf"],
        "speedup": best["dense"] / best["pruned"],
        **flops_summary(pruned_outputs),
        "dense_latency_ms_b1": lat["dense"],
        "pruned_latency_ms_b1": lat["pruned"],
        "latency_speedup_b1": lat["dense"] / lat["pruned"],
        "pruned_gflops_per_s": executed / best["pruned"] / 1e9,
        "dense_gflops_per_s": dense_executed / best["dense"] / 1e9,
        "matmul_peak_gflops_per_s": peak,
        "pruned_fraction_of_peak": executed / best["pruned"] / 1e9 / peak,
        "timing_spread": spread,
        "batch_size": cfg.batch_size,
        "batches": len(batches),
        "rounds": cfg.rounds,
        "layout": layout,
    }


def compare_to_fp32(artifact: Artifact, reference: Artifact, encoded: list[Encoded], cfg) -> dict:
    """Logit and decision differences of a low-precision artifact against its fp32 load."""
    inputs = select_inputs(encoded, cfg)
    pad_id = artifact.tokenizer.pad_token_id
    diffs, agree, kept_agree, total = [], 0, 0, 0
    with torch.inference_mode():
        for g in length_sorted_batches(inputs, cfg.batch_size):
            b = pad_batch([inputs[i] for i in g], pad_id)
            low = artifact.model(*_args(b, artifact.device), mode="compact")
            ref = reference.model(*_args(b, reference.device), mode="compact")
            diffs.append((low.logits.float().cpu() - ref.logits.float().cpu()).abs().max().item())
            agree += int((low.logits.argmax(-1).cpu() == ref.logits.argmax(-1).cpu()).sum())
            kept_agree += int((low.kept_tokens == ref.kept_tokens).all(dim=1).sum())
            total += len(g)
    return {
        "max_logit_diff_vs_fp32": max(diffs),
        "label_agreement_vs_fp32": agree / total,
        "kept_counts_equal_vs_fp32": kept_agree / total,
    }


def _args(batch: Batch, device: torch.device):
    b = batch.to(device)
    return b.input_ids, b.attention_mask, b.token_type_ids
