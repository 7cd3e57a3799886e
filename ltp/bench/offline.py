"""Offline benchmark: dense and compact forward on the same inputs, in one process, alternating.

"Dense" is the same model on the same engine with every token kept (mode ``unpruned``), so
the speed-up is what pruning buys on that engine; the Hugging Face model's own forward is
timed beside them (``hf_seq_per_s``)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ltp.bench.timing import alternate, timed
from ltp.core.artifact import Artifact
from ltp.core.model import ForwardOutput
from ltp.core.text import Encoded, PaddedBatch


@dataclass
class BenchConfig:
    batch_size: int = 32
    max_length: int = 128
    min_tokens: int = 0  # keep only inputs at least this long (after truncation)
    max_examples: int = 512
    rounds: int = 5  # timed rounds per mode, alternating
    latency_examples: int = 32  # inputs timed one at a time for batch-1 latency
    order: str = "length"  # one of ltp.core.config.BATCH_ORDERS


def bench_batches(artifact: Artifact, inputs: list[Encoded], cfg: BenchConfig
                  ) -> list[PaddedBatch]:
    """The timed batches: length-sorted, or in arrival order (the mixed lengths a service's
    queue sees)."""
    if cfg.order == "arrival":
        return [artifact.pad(inputs[i:i + cfg.batch_size])
                for i in range(0, len(inputs), cfg.batch_size)]
    return [b for _, b in artifact.batches(inputs, cfg.batch_size)]


def _sync(device: torch.device) -> Callable[[], None] | None:
    """What waits for the device's queued work: None on the CPU, which runs in order."""
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None


def select_inputs(encoded: list[Encoded], cfg: BenchConfig) -> list[Encoded]:
    """Inputs at least ``min_tokens`` long, first ``max_examples`` of them."""
    chosen = [e for e in encoded if e.num_tokens >= cfg.min_tokens][: cfg.max_examples]
    if not chosen:
        raise ValueError(f"no input has at least {cfg.min_tokens} tokens")
    return chosen


def _forward_all(artifact: Artifact, batches: list[PaddedBatch], mode: str):
    return [artifact.model.run(b, mode=mode) for b in batches]


def _hf_all(artifact: Artifact, batches: list[PaddedBatch]) -> None:
    for b in batches:
        artifact.model.hf(input_ids=b.input_ids, attention_mask=b.attention_mask,
                          token_type_ids=b.token_type_ids)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype | str, size: int = 2048,
                       repeats: int = 10) -> float:
    """Best GFLOP/s of a square matrix multiply: the practical ceiling of this device.

    The side grows from 256 up to ``size`` while one multiply takes under 0.1 s: where a
    kernel is emulated (bf16 without native support: one 2048 multiply took a minute on an
    AVX2 CPU) the peak is read at a smaller size instead of stalling the bench.
    ``dtype="int8"``: the int8 linear the model runs (``ltp.core.quant.Int8Linear``)."""
    side = 256
    while True:
        run = _matmul(device, dtype, side)
        first = timed(run, _sync(device))
        if first >= 0.1 or side >= size:
            break
        side *= 2
    repeats = max(1, min(repeats, int(1.0 / max(first, 1e-9))))  # about a second of timing
    best = min(first, *(timed(run, _sync(device)) for _ in range(repeats)))
    return 2 * side**3 / best / 1e9


def _matmul(device: torch.device, dtype: torch.dtype | str, size: int):
    if dtype == "int8":
        from ltp.core.quant import Int8Linear, quantize_weight

        a = torch.randn(size, size)
        linear = Int8Linear(*quantize_weight(torch.randn(size, size)), torch.zeros(size))
        return lambda: linear(a)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return lambda: torch.mm(a, b)


def flops_summary(outputs: list[ForwardOutput]) -> dict:
    """Relative FLOPs (paper formula and whole model) and mean kept fraction per layer."""
    n_in = torch.cat([o.input_tokens for o in outputs]).double()
    kept = torch.cat([o.kept_tokens for o in outputs]).double()
    total = {k: float(sum(getattr(o, k).sum() for o in outputs))
             for k in ("flops", "flops_dense", "model_flops", "model_flops_dense",
                       "model_flops_unpruned")}
    return {
        "relative_flops": total["flops"] / total["flops_dense"],
        "relative_model_flops": total["model_flops"] / total["model_flops_dense"],
        # against the same compact forward with nothing pruned: the FLOPs ratio of LTP to its
        # dense parent when both run on one engine
        "relative_engine_flops": total["model_flops"] / total["model_flops_unpruned"],
        "kept_fraction_per_layer": [round(float(x), 4) for x in kept.sum(0) / n_in.sum()],
        "mean_input_tokens": float(n_in.mean()),
        "examples": int(n_in.numel()),
    }


def run_bench(artifact: Artifact, encoded: list[Encoded], cfg: BenchConfig,
              progress: bool = False) -> dict:
    """Throughput at ``cfg.batch_size`` and latency at batch 1, dense vs compact (and raw HF);
    ``progress``: a bar of the timed rounds on stderr."""
    device = artifact.device
    inputs = select_inputs(encoded, cfg)
    batches = bench_batches(artifact, inputs, cfg)
    padding = 1 - sum(int(b.live.sum()) for b in batches) / sum(b.live.numel() for b in batches)
    singles = [artifact.pad([e]) for e in inputs[: cfg.latency_examples]]

    with torch.inference_mode(), tqdm(total=2 * (cfg.rounds + 1), desc="bench", unit="round",
                                      disable=not progress, dynamic_ncols=True) as bar:
        pruned_outputs = _forward_all(artifact, batches, "compact")
        throughput = alternate({
            "dense": lambda: _forward_all(artifact, batches, "unpruned"),
            "pruned": lambda: _forward_all(artifact, batches, "compact"),
            "hf": lambda: _hf_all(artifact, batches),
        }, cfg.rounds, sync=_sync(device), after_round=bar.update)
        latency = alternate({
            "dense": lambda: _forward_all(artifact, singles, "unpruned"),
            "pruned": lambda: _forward_all(artifact, singles, "compact"),
        }, cfg.rounds, sync=_sync(device), after_round=bar.update)

    n = len(inputs)
    best = {k: min(v) for k, v in throughput.items()}
    executed = float(sum(o.model_flops.sum() for o in pruned_outputs))  # compact, whole model
    dense_executed = float(sum(o.model_flops_dense.sum() for o in pruned_outputs))
    peak = matmul_peak_gflops(device, precision_of(artifact.model))
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
        "engine": artifact.model.engine.name,
        "order": cfg.order,
        "padding_ratio": padding,
    }


def precision_of(model) -> torch.dtype | str:
    """The dtype the model's matrix multiplies run in, or "int8"."""
    from ltp.core.quant import is_int8

    return "int8" if is_int8(model) else next(model.hf.parameters()).dtype


def agreement(artifact: Artifact, reference: Artifact | None, encoded: list[Encoded],
              labels: list[int], cfg: BenchConfig) -> dict:
    """Accuracy of the compact and dense forwards, and how the compact forward agrees with
    ``reference`` (the same model in fp32; None: the artifact is the fp32 reference).

    ``keep_agreement_vs_fp32`` is the share of input tokens whose keep decisions equal the
    reference's in every pruning layer (the same number of layers kept them);
    ``kept_counts_equal_vs_fp32`` the share of inputs whose kept counts are equal in every
    layer.
    """
    chosen = [i for i, e in enumerate(encoded) if e.num_tokens >= cfg.min_tokens][: cfg.max_examples]
    inputs, gold = [encoded[i] for i in chosen], torch.tensor([labels[i] for i in chosen])
    counts = dict.fromkeys(("compact", "dense", "labels", "kept", "tokens", "tokens_equal"), 0)
    max_diff = 0.0
    with torch.inference_mode():
        for g, b in artifact.batches(inputs, cfg.batch_size):
            out = artifact.model.run(b, mode="compact", track_tokens=True)
            dense = artifact.model.run(b, mode="dense")
            ref = out if reference is None else reference.model.run(
                b.to(reference.device), mode="compact", track_tokens=True)
            predicted, expected = out.logits.argmax(-1).cpu(), ref.logits.argmax(-1).cpu()
            counts["compact"] += int((predicted == gold[g]).sum())
            counts["dense"] += int((dense.logits.argmax(-1).cpu() == gold[g]).sum())
            counts["labels"] += int((predicted == expected).sum())
            counts["kept"] += int((out.kept_tokens == ref.kept_tokens).all(dim=1).sum())
            live = b.live.cpu()
            counts["tokens"] += int(live.sum())
            counts["tokens_equal"] += int((out.token_layers == ref.token_layers)[live].sum())
            diff = (out.logits.float().cpu() - ref.logits.float().cpu()).abs().max().item()
            max_diff = max(max_diff, diff)
    n = len(inputs)
    return {
        "accuracy": counts["compact"] / n,
        "dense_accuracy": counts["dense"] / n,
        "label_agreement_vs_fp32": counts["labels"] / n,
        "keep_agreement_vs_fp32": counts["tokens_equal"] / counts["tokens"],
        "kept_counts_equal_vs_fp32": counts["kept"] / n,
        "max_logit_diff_vs_fp32": max_diff,
        "accuracy_examples": n,
    }
