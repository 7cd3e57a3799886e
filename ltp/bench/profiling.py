"""Where the compact forward's time goes: matrix multiplies against everything else.

``torch.profiler`` records every operator; the self time of the matrix-multiply kernels
(linear layers in any precision, attention products, the fused attention kernel) is the
work the FLOPs count. Everything else, element-wise operators, gathers, the per-input
attention loop and the Python between operators, is the fixed overhead: it is the forward's
wall time minus the matmul time, so time the profiler does not see (Python) counts as
overhead too.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from ltp.core.engines import Engine
from ltp.core.engines.ort import ORT_RANGE

# operators whose self time is matrix-multiply work
MATMUL_OPS = frozenset({
    "aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::_int_mm",
    "quantized::linear_dynamic", "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_attention_math", "aten::mkldnn_rnn_layer",
})


# operators that are attention's other work: scores, softmax, masks, head reshapes
ATTENTION_OPS = frozenset({"aten::_softmax", "aten::softmax", "aten::masked_fill_", "aten::mul",
                           "aten::sum", "aten::split", "aten::unbind", "aten::permute",
                           "aten::transpose", "aten::cat", "aten::div"})


def profile_forward(run, repeats: int = 3, top: int = 12) -> dict:
    """Profile ``run()`` (one or more forwards) ``repeats`` times.

    Returns the best unprofiled wall time, the matmul kernels' self time under the profiler,
    the matmul and non-matmul shares of the wall time, the operators with the most self
    time (per run, milliseconds), and where the profiled time went: matrix multiplies,
    ONNX Runtime's sessions (``ort::run``), attention's other operators, every other
    kernel, and what no operator accounts for (Python between operators and dispatch).
    """
    run()  # warm-up outside the profile
    wall = float("inf")  # unprofiled: the profiler's own cost per operator is not the model's
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        wall = min(wall, time.perf_counter() - start)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            run()
    profiled_ms = (time.perf_counter() - start) * 1e3 / repeats
    self_ms: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    ort_ms = 0.0
    for event in prof.key_averages():
        if event.key == ORT_RANGE:
            ort_ms += event.cpu_time_total / 1e3 / repeats
        if event.key.startswith("ltp."):  # the per-layer ranges, not operators
            continue
        self_ms[event.key] += event.self_cpu_time_total / 1e3 / repeats
        counts[event.key] += event.count // repeats
    matmul = sum(ms for name, ms in self_ms.items() if name in MATMUL_OPS)
    attention = sum(ms for name, ms in self_ms.items() if name in ATTENTION_OPS)
    kernels = sum(ms for name, ms in self_ms.items() if name != ORT_RANGE)
    wall_ms = wall * 1e3
    ranked = sorted(self_ms.items(), key=lambda kv: -kv[1])[:top]
    split = {"matmul": matmul, "ort_sessions": ort_ms, "attention_other": attention,
             "other_kernels": kernels - matmul - attention,
             "python_and_dispatch": max(0.0, profiled_ms - kernels - ort_ms)}
    return {
        "wall_ms": wall_ms,
        "matmul_ms": matmul,
        "matmul_share": matmul / wall_ms,
        "non_matmul_share": 1 - matmul / wall_ms,
        "operator_calls": sum(counts.values()),
        "top_ops_ms": {name: round(ms, 2) for name, ms in ranked},
        "top_ops_calls": {name: counts[name] for name, _ in ranked},
        "profiled_ms": profiled_ms,
        "time_split": {k: round(v / profiled_ms, 3) for k, v in split.items()},
        "layers": _layers(prof, repeats),
    }


def _layers(prof, repeats: int) -> list[dict]:
    """Per ``ltp.layer{i}`` range: wall time and the matmul kernels' self time, ms per run."""
    rows: dict[str, dict] = {}
    for event in prof.events():
        if not event.name.startswith("ltp.layer"):
            continue
        row = rows.setdefault(event.name, {"layer": int(event.name[len("ltp.layer"):]),
                                           "ms": 0.0, "matmul_ms": 0.0})
        row["ms"] += event.cpu_time_total / 1e3 / repeats
        row["matmul_ms"] += _matmul_below(event) / 1e3 / repeats
    out = sorted(rows.values(), key=lambda r: r["layer"])
    for row in out:
        row["non_matmul_share"] = 1 - row["matmul_ms"] / row["ms"] if row["ms"] else 0.0
        row["ms"], row["matmul_ms"] = round(row["ms"], 2), round(row["matmul_ms"], 2)
    return out


def _matmul_below(event) -> float:
    """Self time (us) of the matmul operators under a profiler event."""
    total, stack = 0.0, list(event.cpu_children)
    while stack:
        child = stack.pop()
        if child.name in MATMUL_OPS:
            total += child.self_cpu_time_total
        stack.extend(child.cpu_children)
    return total


class LayerRanges(Engine):
    """Another engine's steps inside ``ltp.layer{i}`` profiler ranges (the last layer's
    ``first_token`` included), so that a profile can be read per layer."""

    def __init__(self, inner: Engine) -> None:
        self.inner, self.name, self.encoder, self.options = inner, inner.name, inner.encoder, {}

    def attention(self, layer, rows, counts, need_scores):
        with record_function(f"ltp.layer{layer}"):
            return self.inner.attention(layer, rows, counts, need_scores)

    def feed_forward(self, layer, ctx, residual):
        with record_function(f"ltp.layer{layer}"):
            return self.inner.feed_forward(layer, ctx, residual)

    def first_token(self, rows, counts):
        with record_function(f"ltp.layer{self.encoder.num_layers - 1}"):
            return self.inner.first_token(rows, counts)


@contextmanager
def layer_ranges(model) -> Iterator[None]:
    """Run ``model``'s engine inside per-layer profiler ranges for the block."""
    inner = model.engine
    model.engine = LayerRanges(inner)
    try:
        yield
    finally:
        model.engine = inner


def profile_batches(artifact, encoded, cfg, repeats: int = 2) -> dict:
    """Profile the compact forward over the bench inputs in length-sorted batches of
    ``cfg.batch_size`` (see ``ltp.bench.offline``): shares, top operators and per-layer times."""
    from ltp.bench.offline import select_inputs

    inputs = select_inputs(encoded, cfg)
    batches = [b for _, b in artifact.batches(inputs, cfg.batch_size)]

    def run() -> None:
        for b in batches:
            artifact.model.run(b, mode="compact")

    with torch.inference_mode(), layer_ranges(artifact.model):
        result = profile_forward(run, repeats)
    return result | {"batches": len(batches), "batch_size": cfg.batch_size}
