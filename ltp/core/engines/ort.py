"""ONNX Runtime for the compact forward's dense parts.

Each layer's fused Q/K/V projection and its feed-forward part (output projection, residual
and LayerNorm, feed-forward, residual and LayerNorm) are exported once, with the token count
as a dynamic axis, and run by ONNX Runtime's CPU kernels with every graph optimisation; in
``int8`` through ``onnxruntime.quantization.quantize_dynamic`` (int8 weights per output
channel, 8-bit activations quantised per call). Where no gather comes between a layer's
feed-forward and the next layer's projections, the two run as one call. Attention (each
input over its own tokens, fp32 probabilities where a layer prunes), the scores and the keep
rule stay in torch, so pruning stacks with ONNX Runtime's kernels and keep decisions are
taken as on every engine.

The graphs are built when the engine is made (``build_seconds`` says how long); embeddings
and the head stay the model's own torch modules.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from ltp.core.attention import attend_first, attend_inputs
from ltp.core.engines.base import Engine
from ltp.core.packing import first_rows, live_from_counts

log = logging.getLogger(__name__)

ORT_RANGE = "ort::run"  # the profiler range of one session call


class _Projection(nn.Module):
    """Fused projections as one MatMul + Add (what dynamic quantisation rewrites)."""

    def __init__(self, linears: list[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.cat([lin.weight for lin in linears]).t().contiguous())
        self.bias = nn.Parameter(torch.cat([lin.bias for lin in linears]))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.matmul(rows, self.weight) + self.bias


class _FeedForward(nn.Module):
    """The layer after attention, as the model computes it (``LTPModel.finish``)."""

    def __init__(self, parts) -> None:
        super().__init__()
        self.attn_out, self.attn_norm = _Projection([parts.attn_out]), parts.attn_norm
        self.ffn_in, self.ffn_out = _Projection([parts.ffn_in]), _Projection([parts.ffn_out])
        self.ffn_norm, self.activation = parts.ffn_norm, parts.activation

    def forward(self, ctx: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        a = self.attn_norm(self.attn_out(ctx) + residual)
        return self.ffn_norm(self.ffn_out(self.activation(self.ffn_in(a))) + a)


class _Step(nn.Module):
    """A layer's feed-forward, then the next layer's Q/K/V projection: one call where no
    gather comes between them."""

    def __init__(self, parts, following) -> None:
        super().__init__()
        self.ffn = _FeedForward(parts)
        self.qkv = _Projection([following.query, following.key, following.value])

    def forward(self, ctx: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.ffn(ctx, residual)
        return rows, self.qkv(rows)


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path,
            outputs: tuple[str, ...] = ("out",)) -> Path:
    axes = {name: {0: "tokens"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    return path


def quantize_graph(path: Path, out: Path | None = None) -> Path:
    """``path``'s graph with int8 weights per output channel and activations quantised per
    call (``quantize_dynamic``); written beside it unless ``out`` is given."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = out or path.with_suffix(".int8.onnx")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # it logs every tensor, and advice, per graph
    try:
        quantize_dynamic(path, out, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    return out


class OrtEngine(Engine):
    name = "ort"
    precisions = ("fp32", "int8")
    devices = ("cpu",)

    def __init__(self, model, precision: str = "fp32", threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(model)
        self.options = {"precision": precision, "threads": threads}
        if precision not in self.precisions:
            raise ValueError(f"the ort engine runs {self.precisions}, not {precision!r}")
        self.precision = precision
        self.threads = threads or torch.get_num_threads()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._ahead = threading.local()  # (rows, their next projections) per worker thread
        start = time.perf_counter()
        self.sessions: dict[tuple[int, str], ort.InferenceSession] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for key, path in self._graphs(Path(tmp)).items():
                if precision == "int8":
                    path = quantize_graph(path)
                self.sessions[key] = ort.InferenceSession(str(path), options,
                                                          providers=["CPUExecutionProvider"])
        self.build_seconds = time.perf_counter() - start
        log.info("ort engine (%s, %d threads): %d graphs built in %.1f s", precision,
                 self.threads, len(self.sessions), self.build_seconds)

    def _graphs(self, folder: Path) -> dict[tuple[int, str], Path]:
        """Every graph the loop calls: per layer its Q/K/V projection and its feed-forward,
        and the feed-forward fused with the next layer's Q/K/V ("step")."""
        enc, rows = self.encoder, torch.randn(7, self.encoder.hidden_size)
        graphs = {}
        for i, parts in enumerate(enc.layers):
            qkv = _Projection([parts.query, parts.key, parts.value])
            graphs[i, "qkv"] = _export(qkv, {"rows": rows}, folder / f"layer{i}.qkv.onnx")
            graphs[i, "ffn"] = _export(_FeedForward(parts).eval(), {"ctx": rows, "residual": rows},
                                       folder / f"layer{i}.ffn.onnx")
            if i + 1 < enc.num_layers:
                graphs[i, "step"] = _export(_Step(parts, enc.layers[i + 1]).eval(),
                                            {"ctx": rows, "residual": rows},
                                            folder / f"layer{i}.step.onnx", ("rows", "qkv"))
        return graphs

    def _run(self, key: tuple[int, str], **inputs: torch.Tensor) -> list[torch.Tensor]:
        feed = {name: np.ascontiguousarray(x.detach().float().numpy()) for name, x in inputs.items()}
        with record_function(ORT_RANGE):  # ONNX Runtime's kernels, for ltp.bench.profiling
            return [torch.from_numpy(out) for out in self.sessions[key].run(None, feed)]

    def _qkv(self, layer: int, rows: torch.Tensor) -> torch.Tensor:
        """The layer's projections of ``rows``: those the previous step computed with them
        (the same tensor, in this thread), else a call of their own."""
        ahead = getattr(self._ahead, "value", None)
        if ahead is not None and ahead[0] is rows:
            return ahead[1]
        return self._run((layer, "qkv"), rows=rows)[0]

    def attention(self, layer, rows, counts, need_scores):
        qkv = self._qkv(layer, rows)
        ctx, received = attend_inputs(qkv, counts.tolist(), self.encoder.num_heads, need_scores, 0.0)
        return ctx, received if need_scores else None

    def feed_forward(self, layer, ctx, residual):
        if layer + 1 == self.encoder.num_layers:
            return self._run((layer, "ffn"), ctx=ctx, residual=residual)[0]
        rows, qkv = self._run((layer, "step"), ctx=ctx, residual=residual)
        self._ahead.value = (rows, qkv)  # the next layer's attention takes them
        return rows

    def first_token(self, rows, counts):
        last, d = self.encoder.num_layers - 1, self.encoder.hidden_size
        qkv = self._qkv(last, rows)
        cls = first_rows(rows, counts)  # (B, d)
        ctx = attend_first(first_rows(qkv, counts)[:, :d], qkv[:, d:], live_from_counts(counts),
                           self.encoder.num_heads)
        return self.feed_forward(last, ctx, cls)

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads,
                "build_seconds": round(self.build_seconds, 2)}
