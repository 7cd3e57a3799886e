"""ONNX Runtime for the compact forward's dense parts.

Each layer's fused Q/K/V projection and its feed-forward part (output projection, residual
and LayerNorm, feed-forward, residual and LayerNorm) are exported once, with the token count
as a dynamic axis, and run by ONNX Runtime's CPU kernels with every graph optimisation; in
``int8`` through ``onnxruntime.quantization.quantize_dynamic`` (int8 weights per output
channel, 8-bit activations quantised per call). Attention (each input over its own tokens,
fp32 probabilities where a layer prunes), the scores and the keep rule stay in torch, so
pruning stacks with ONNX Runtime's kernels and keep decisions are taken as on every engine.

The graphs are built when the engine is made (``build_seconds`` says how long); embeddings
and the head stay the model's own torch modules.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ltp.core.attention import attend_first, attend_inputs
from ltp.core.engines.base import Engine
from ltp.core.packing import first_rows, live_from_counts

log = logging.getLogger(__name__)

_PROJECTIONS = {"q": "query", "k": "key", "v": "value"}


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


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path) -> Path:
    axes = {name: {0: "tokens"} for name in (*inputs, "out")}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=["out"], dynamic_axes=axes, opset_version=17, dynamo=False)
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
        """Every graph the loop calls: per layer its Q/K/V and its feed-forward; for the
        last layer also K/V alone and Q alone (the classifier tokens' query)."""
        enc, d = self.encoder, self.encoder.hidden_size
        rows = torch.randn(7, d)
        last = enc.num_layers - 1
        graphs = {}
        for i, parts in enumerate(enc.layers):
            which = ["qkv", "kv", "q"] if i == last else ["qkv"]
            for w in which:
                module = _Projection([getattr(parts, _PROJECTIONS[c]) for c in w])
                graphs[i, w] = _export(module, {"rows": rows}, folder / f"layer{i}.{w}.onnx")
            graphs[i, "ffn"] = _export(_FeedForward(parts).eval(), {"ctx": rows, "residual": rows},
                                       folder / f"layer{i}.ffn.onnx")
        return graphs

    def _run(self, key: tuple[int, str], **inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(x.detach().float().numpy()) for name, x in inputs.items()}
        return torch.from_numpy(self.sessions[key].run(None, feed)[0])

    def attention(self, layer, rows, counts, need_scores):
        qkv = self._run((layer, "qkv"), rows=rows)
        ctx, received = attend_inputs(qkv, counts.tolist(), self.encoder.num_heads, need_scores, 0.0)
        return ctx, received if need_scores else None

    def feed_forward(self, layer, ctx, residual):
        return self._run((layer, "ffn"), ctx=ctx, residual=residual)

    def first_token(self, rows, counts):
        last = self.encoder.num_layers - 1
        cls = first_rows(rows, counts)  # (B, d)
        ctx = attend_first(self._run((last, "q"), rows=cls), self._run((last, "kv"), rows=rows),
                           live_from_counts(counts), self.encoder.num_heads)
        return self.feed_forward(last, ctx, cls)

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads,
                "build_seconds": round(self.build_seconds, 2)}
