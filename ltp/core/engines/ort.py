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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from ltp.core.attention import attend_first, attend_inputs
from ltp.core.engines.base import Engine
from ltp.core.engines.graphs import FeedForward, Projection, Step, WholeForward
from ltp.core.packing import first_rows, live_from_counts

log = logging.getLogger(__name__)

ORT_RANGE = "ort::run"  # the profiler range of one session call


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path,
            outputs: tuple[str, ...] = ("out",), per_token: tuple[str, ...] | None = None) -> Path:
    """``module`` as ONNX; the inputs and the outputs named in ``per_token`` (default: all)
    have one row per token, a dynamic axis."""
    axes = {name: {0: "tokens"} for name in (*inputs, *(outputs if per_token is None else per_token))}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    return path


def quantize_graph(path: Path, out: Path | None = None, weights_only: bool = True) -> Path:
    """``path``'s graph with int8 weights per output channel and activations quantised per
    call (``quantize_dynamic``); written beside it unless ``out`` is given. ``weights_only``:
    products of two activations (attention's) stay fp32, as importance scores need;
    without it every MatMul is quantised (``quantize_dynamic``'s default)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = out or path.with_suffix(".int8.onnx")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # it logs every tensor, and advice, per graph
    try:
        quantize_dynamic(path, out, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"MatMulConstBOnly": weights_only})
    finally:
        root.setLevel(level)
    return out


def _run_inputs(session, feeds: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The whole forward of each input, one call each: its logits and kept counts."""
    out = []
    for feed in feeds:
        with record_function(ORT_RANGE):
            logits, kept = session.run(None, feed)
        out.append((logits, kept))
    return out


def session_options(threads: int, spinning: bool = False):
    """ONNX Runtime's session settings here: every graph optimisation, ``threads`` for each
    operator, and by default no spinning: a thread pool that spins after a call takes the
    cores from whatever runs next (torch's attention between calls, another worker)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return options


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
        options = session_options(self.threads)
        self._ahead = threading.local()  # (rows, their next projections) per worker thread
        start = time.perf_counter()
        self.sessions: dict[tuple[int, str], ort.InferenceSession] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for key, path in self._graphs(Path(tmp)).items():
                if precision == "int8":
                    path = quantize_graph(path)
                self.sessions[key] = ort.InferenceSession(str(path), options,
                                                          providers=["CPUExecutionProvider"])
            self._whole = self._whole_session(Path(tmp), ort)
        self.build_seconds = time.perf_counter() - start
        log.info("ort engine (%s, %d threads): %d graphs built in %.1f s", precision,
                 self.threads, len(self.sessions), self.build_seconds)

    def _graphs(self, folder: Path) -> dict[tuple[int, str], Path]:
        """Every graph the loop calls: per layer its Q/K/V projection and its feed-forward,
        and the feed-forward fused with the next layer's Q/K/V ("step")."""
        enc, rows = self.encoder, torch.randn(7, self.encoder.hidden_size)
        graphs = {}
        for i, parts in enumerate(enc.layers):
            qkv = Projection([parts.query, parts.key, parts.value])
            graphs[i, "qkv"] = _export(qkv, {"rows": rows}, folder / f"layer{i}.qkv.onnx")
            graphs[i, "ffn"] = _export(FeedForward(parts).eval(), {"ctx": rows, "residual": rows},
                                       folder / f"layer{i}.ffn.onnx")
            if i + 1 < enc.num_layers:
                graphs[i, "step"] = _export(Step(parts, enc.layers[i + 1]).eval(),
                                            {"ctx": rows, "residual": rows},
                                            folder / f"layer{i}.step.onnx", ("rows", "qkv"))
        return graphs

    def _whole_session(self, folder: Path, ort):
        """The whole forward's graph (``ltp.core.engines.graphs.WholeForward``) for threshold models. With
        more than one thread: a lone input runs on a session of all the threads, spinning
        between operators (one input's operators are short: waking a sleeping pool for each
        cost more than the work; 6.5 ms against 7.5 ms without spinning and 8.8 ms on one
        thread here), and a batch's inputs run side by side, one a thread, on a session of
        one thread."""

        if self.model.pruning.strategy != "threshold":
            return None
        self._whole_thresholds = self.model.thresholds().detach().clone()
        ids = torch.tensor([self.model.hf.config.pad_token_id or 0] * 7) + 5
        path = _export(WholeForward(self.model).eval(), {"ids": ids, "types": ids * 0},
                       folder / "whole.onnx", ("logits", "kept"), per_token=())
        if self.precision == "int8":
            path = quantize_graph(path)
        single = ort.InferenceSession(str(path), session_options(1),
                                      providers=["CPUExecutionProvider"])
        if self.threads == 1:
            return single, single, None
        lone = ort.InferenceSession(str(path), session_options(self.threads, spinning=True),
                                    providers=["CPUExecutionProvider"])
        return lone, single, ThreadPoolExecutor(self.threads, thread_name_prefix="ltp-ort")

    def whole(self, input_ids, attention_mask, token_type_ids):
        if self._whole is None or not torch.equal(self.model.thresholds().detach(),
                                                  self._whole_thresholds):
            return None  # top-k, or thresholds changed since the graph was built
        lone, single, pool = self._whole
        names = {i.name for i in single.get_inputs()}  # a family without type ids has none
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
        feeds = [{k: v for k, v in (("ids", ids[:n].numpy()), ("types", ty[:n].numpy()))
                  if k in names}
                 for ids, ty, n in zip(input_ids, types, attention_mask.sum(dim=1).tolist(),
                                       strict=True)]
        if pool is None or len(feeds) == 1:
            outputs = _run_inputs(lone, feeds)
        else:  # inputs dealt round-robin to the threads, each running its share in turn
            shares = [feeds[i::self.threads] for i in range(self.threads)]
            done = list(pool.map(lambda share: _run_inputs(single, share), shares))
            outputs = [done[i % self.threads][i // self.threads] for i in range(len(feeds))]
        return (torch.cat([torch.from_numpy(logits) for logits, _ in outputs]),
                torch.stack([torch.from_numpy(kept) for _, kept in outputs]).long())

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
