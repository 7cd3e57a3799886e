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

A threshold model runs instead as one graph from token ids to logits (``whole``,
``ltp.core.engines.graphs``): a lone input as ``WholeForward``, a batch side by side on the
threads in calls of up to ``group`` inputs packed one after another (``PackedForward``:
each weight read once a call for all of them; one input a call where ``group`` is 1). The
layer loop above serves top-k models and token tracking.

The graphs are built when the engine is made (``build_seconds`` says how long), one at a
time under the temporary directory, each removed once loaded; embeddings and the head of
the layer loop stay the model's own torch modules.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from ltp.core.attention import attend_first, attend_inputs
from ltp.core.engines.base import Engine, EngineError, tensor_stamp
from ltp.core.engines.graphs import (
    KEPT,
    FeedForward,
    PackedForward,
    Projection,
    Step,
    WholeForward,
    packed_counts,
)
from ltp.core.packing import first_rows, live_from_counts
from ltp.core.quant import ORT_WEIGHT_LEVELS, quantize_weight

log = logging.getLogger(__name__)

ORT_RANGE = "ort::run"  # the profiler range of one session call
# int8 activations per call by default; per row (``scale_rows``) is an option, closer to
# fp32 and slower (reports/ort-rows-amazon-food)
ROWS = False
# inputs a whole-forward call of a batch takes at most, by precision (reports/ort-groups-*):
# packed fp32 calls are faster; in int8 per call one activation range would span the
# inputs packed together, so an input's answer would depend on its neighbours
GROUP = {"fp32": 8, "int8": 1}


def _export(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path,
            outputs: tuple[str, ...] = ("out",), axes: dict[str, dict[int, str]] | None = None
            ) -> Path:
    """``module`` as ONNX with the dynamic ``axes`` given (default: every input and output
    has one row per token, a dynamic first axis)."""
    if axes is None:
        axes = {name: {0: "tokens"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    return path


def quantize_graph(path: Path, out: Path | None = None, weights_only: bool = True,
                   rows: bool = False) -> Path:
    """``path``'s graph with int8 weights per output channel; written beside it unless
    ``out`` is given.

    Activations: with ``rows``, each row (token) is quantised on its own range
    (``scale_rows``: the served int8, whose result for an input does not depend on its
    length or on any other input); without, one range per tensor a call
    (``quantize_dynamic``, what a user of ONNX Runtime runs). ``weights_only``: products of
    two activations (attention's) stay fp32, as importance scores need; without it every
    MatMul is quantised (``quantize_dynamic``'s default; per row, only weights are)."""
    out = out or path.with_suffix(".int8.onnx")
    if rows:
        import onnx

        model = onnx.load(str(path))
        scale_rows(model)
        onnx.save(model, str(out))
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # it logs every tensor, and advice, per graph
    try:
        quantize_dynamic(path, out, weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"MatMulConstBOnly": weights_only})
    finally:
        root.setLevel(level)
    return out


def scale_rows(model) -> int:
    """Rewrite, in place, every MatMul of an ONNX ``model`` by a constant (K, N) weight as
    int8 with one range per row of its input: ``W (x / a) * a = W x`` with ``a`` each row's
    largest magnitude (the eager int8's row scaling, ``ltp.core.quant``), so every row lies
    in [-1, 1] and is quantised on that one fixed range (uint8 around 128, step 1/127);
    weights symmetric per output channel on ``ORT_WEIGHT_LEVELS`` (``quantize_weight``, the
    grid the int8-aware stage trains on). Seven nodes a MatMul: Abs, ReduceMax, Max (no zero
    range), Div, QuantizeLinear, MatMulIntegerToFloat, Mul. Returns how many were rewritten."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    weights = {i.name: i for i in graph.initializer if len(i.dims) == 2}
    step, zero, tiny = "rows_step", "rows_zero", "rows_tiny"
    added = [helper.make_tensor(step, TensorProto.FLOAT, [], [1 / 127]),
             helper.make_tensor(zero, TensorProto.UINT8, [], [128]),
             helper.make_tensor(tiny, TensorProto.FLOAT, [], [1e-12])]
    nodes, count = [], 0
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            nodes.append(node)
            continue
        weight = torch.from_numpy(numpy_helper.to_array(weights[node.input[1]]).copy())
        q, scale = quantize_weight(weight.t(), ORT_WEIGHT_LEVELS)  # (N, K) int8, (N,)
        p, x = f"{node.input[1]}_rows", node.input[0]
        added += [numpy_helper.from_array(q.t().contiguous().numpy(), f"{p}_quantized"),
                  numpy_helper.from_array(scale.numpy(), f"{p}_scale")]
        nodes += [helper.make_node("Abs", [x], [f"{p}_abs"]),
                  helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_max"], axes=[-1], keepdims=1),
                  helper.make_node("Max", [f"{p}_max", tiny], [f"{p}_range"]),
                  helper.make_node("Div", [x, f"{p}_range"], [f"{p}_unit"]),
                  helper.make_node("QuantizeLinear", [f"{p}_unit", step, zero], [f"{p}_q"]),
                  helper.make_node("MatMulIntegerToFloat",
                                   [f"{p}_q", f"{p}_quantized", step, f"{p}_scale", zero],
                                   [f"{p}_y"], domain="com.microsoft"),
                  helper.make_node("Mul", [f"{p}_y", f"{p}_range"], [node.output[0]])]
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + [t for t in added if t.name in used])
    if count and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return count


def _run_calls(calls: list[tuple]) -> list[list[np.ndarray]]:
    """The whole forward of each (session, feed) (an input, or a group), one call each: its
    outputs (the logits first)."""
    if not torch.autograd._profiler_enabled():  # the range costs tens of us after a call
        return [session.run(None, feed) for session, feed in calls]
    out = []
    for session, feed in calls:
        with record_function(ORT_RANGE):
            out.append(session.run(None, feed))
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


def export_whole(model, folder: Path, group: int = 1) -> tuple[Path, Path | None]:
    """The whole pruned forward of a threshold model as ONNX in ``folder``: one input's graph
    (``WholeForward``: ids and type ids (n,)) and, with ``group`` above 1, the graph of that
    many inputs packed (``PackedForward``: ``ids{g}`` and ``types{g}`` of each)."""
    ids = torch.tensor([model.hf.config.pad_token_id or 0] * 7) + 5
    whole = WholeForward(model).eval()
    kept = tuple(KEPT.format(i) for i, prunes in enumerate(whole.prunes) if prunes)
    lone = _export(whole, {"ids": ids, "types": ids * 0}, folder / "whole.onnx",
                   ("logits", *kept), {"ids": {0: "tokens"}, "types": {0: "tokens"},
                                       **{name: {0: name} for name in kept}})
    if group == 1:
        return lone, None
    feeds = {}
    for g in range(group):  # inputs of unlike lengths, so that every size is traced
        feeds[f"ids{g}"] = ids[:3 + g % 5]
        feeds[f"types{g}"] = feeds[f"ids{g}"] * 0
    packed = _export(PackedForward(model, group).eval(), feeds, folder / "packed.onnx",
                     ("logits", *kept), {**{name: {0: name} for name in (*feeds, *kept)}})
    return lone, packed


def _check_room(folder: Path, model) -> None:
    """The graphs are written under the temporary directory (``TMPDIR``) one or two at a
    time, each about the size of the model in fp32, and ``quantize_dynamic`` writes its own
    copy beside: refuse with a clear message where that cannot fit (a small tmpfs on
    ``/tmp`` would otherwise fail later as a corrupt graph)."""
    import shutil

    need = 4 * sum(p.numel() * p.element_size() for p in model.hf.parameters())
    free = shutil.disk_usage(folder).free
    if free < need:
        raise EngineError(
            f"the ort engine writes its ONNX graphs (about {need / 2**20:.0f} MiB at once for "
            f"this model) under {folder.parent}, which has {free / 2**20:.0f} MiB free: give "
            "it more room (a larger tmpfs on /tmp, or TMPDIR on a writable disk), or serve "
            "with --engine eager")


@dataclass(frozen=True)
class WholeSessions:
    """The sessions of the whole forward: a lone input's (every thread), one input's on one
    thread, a packed group's on one thread (None with groups of one), and the threads that
    run inputs or groups side by side (None on one thread); ``outputs``: the names of the
    graphs' outputs (the logits, then ``KEPT`` of each layer that prunes); ``inputs``: the
    names one input's graph and the packed graph take (no type ids in some families)."""

    lone: object
    single: object
    group: object | None
    pool: ThreadPoolExecutor | None
    outputs: tuple[str, ...] = ()
    inputs: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


class OrtEngine(Engine):
    name = "ort"
    precisions = ("fp32", "int8")
    devices = ("cpu",)

    def __init__(self, model, precision: str = "fp32", threads: int | None = None,
                 group: int | None = None, rows: bool = ROWS) -> None:
        super().__init__(model)
        if precision not in self.precisions:
            raise ValueError(f"the ort engine runs {self.precisions}, not {precision!r}")
        group = GROUP[precision] if group is None else group
        if model.pruning.fuse:
            group = 1  # the packed graph gathers only
        if group < 1:
            raise ValueError(f"a group holds at least one input, not {group}")
        self.options = {"precision": precision, "threads": threads, "group": group, "rows": rows}
        self.precision = precision
        self.threads = threads or torch.get_num_threads()
        self.group = group
        self.rows = rows  # int8 activations per row, else per call
        options = session_options(self.threads)
        self._ahead = threading.local()  # (rows, their next projections) per worker thread
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            _check_room(Path(tmp), model)
            self.sessions = {key: self._session(path, options)
                             for key, path in self._graphs(Path(tmp))}
            self._whole = self._whole_session(Path(tmp))
        self.build_seconds = time.perf_counter() - start
        log.info("ort engine (%s, %d threads): %d graphs built in %.1f s", precision,
                 self.threads, len(self.sessions), self.build_seconds)

    def _session(self, path: Path, *options, disabled: tuple[str, ...] = ()):
        """A session of ``path``'s graph (quantised first in int8) for each of ``options``,
        without the ``disabled`` graph optimisations (one session, or a tuple of them); the
        files are removed once loaded, so the graphs never all lie on disk at once."""
        import onnxruntime as ort

        graph = quantize_graph(path, rows=self.rows) if self.precision == "int8" else path
        try:
            sessions = tuple(ort.InferenceSession(str(graph), o, providers=["CPUExecutionProvider"],
                                                  disabled_optimizers=list(disabled))
                             for o in options)
            return sessions[0] if len(sessions) == 1 else sessions
        finally:
            path.unlink(missing_ok=True)
            graph.unlink(missing_ok=True)

    def _graphs(self, folder: Path) -> Iterator[tuple[tuple[int, str], Path]]:
        """Every graph the loop calls, exported one at a time: per layer its Q/K/V
        projection and its feed-forward, and the feed-forward fused with the next layer's
        Q/K/V ("step")."""
        enc, rows = self.encoder, torch.randn(7, self.encoder.hidden_size)
        for i, parts in enumerate(enc.layers):
            qkv = Projection([parts.query, parts.key, parts.value])
            yield (i, "qkv"), _export(qkv, {"rows": rows}, folder / f"layer{i}.qkv.onnx")
            yield (i, "ffn"), _export(FeedForward(parts).eval(), {"ctx": rows, "residual": rows},
                                      folder / f"layer{i}.ffn.onnx")
            if i + 1 < enc.num_layers:
                yield (i, "step"), _export(Step(parts, enc.layers[i + 1]).eval(),
                                           {"ctx": rows, "residual": rows},
                                           folder / f"layer{i}.step.onnx", ("rows", "qkv"))

    def _whole_session(self, folder: Path) -> WholeSessions | None:
        """The whole forward's graphs (``ltp.core.engines.graphs``) for threshold models: a
        lone input runs ``WholeForward`` on a session of all the threads, spinning between
        operators (one input's operators are short: waking a sleeping pool for each cost
        more than the work; 6.5 ms against 7.5 ms without spinning and 8.8 ms on one thread
        here); a batch's inputs run side by side, one a thread, on sessions of one thread:
        one input a call (``group`` 1), or up to ``group`` a call packed as ``PackedForward``."""
        if self.model.pruning.strategy != "threshold":
            return None
        self._whole_thresholds = self.model.thresholds().detach().clone()
        self._whole_fuse = self.model.pruning.fuse
        self._whole_stamp = self._thresholds_stamp()
        lone, group = export_whole(self.model, folder, self.group)
        if self.threads > 1:
            lone, single = self._session(lone, session_options(self.threads, spinning=True),
                                         session_options(1))
        else:
            lone = single = self._session(lone, session_options(1))
        group = self._session(group, session_options(1)) if group is not None else None
        return WholeSessions(
            lone=lone, single=single, group=group,
            pool=ThreadPoolExecutor(self.threads, thread_name_prefix="ltp-ort")
            if self.threads > 1 else None,
            outputs=tuple(o.name for o in single.get_outputs()),
            inputs=tuple(frozenset(i.name for i in s.get_inputs()) if s else frozenset()
                         for s in (single, group)))

    def groups(self, lengths: list[int]) -> list[list[int]]:
        """The inputs of a batch (by index) in groups of similar length, each of at most
        ``group`` inputs, and at least as many groups as threads (where there are inputs
        enough) so that every thread has one."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        count = min(len(order), max(self.threads, -(-len(order) // self.group)))
        size = -(-len(order) // count)
        return [order[i:i + size] for i in range(0, len(order), size)]

    def _feed(self, members: list[int], ids: np.ndarray, types: np.ndarray,
              lengths: list[int]) -> dict[str, np.ndarray]:
        """One call's feed: a lone input's ids and type ids, or a packed group's, each member
        as ``ids{g}`` / ``types{g}``, the places past the last member filled by inputs of
        the classifier token alone (the fewest operators, and never read back); only the
        names the graph takes (some families have no type ids)."""
        if len(members) == 1:
            i = members[0]
            pairs = {"ids": ids[i, :lengths[i]], "types": types[i, :lengths[i]]}
            return {k: v for k, v in pairs.items() if k in self._whole.inputs[0]}
        feed = {}
        for g in range(self.group):
            i = members[min(g, len(members) - 1)]
            n = lengths[i] if g < len(members) else 1
            feed[f"ids{g}"], feed[f"types{g}"] = ids[i, :n], types[i, :n]
        return {k: v for k, v in feed.items() if k in self._whole.inputs[1]}

    def _thresholds_stamp(self) -> tuple | None:
        return tensor_stamp(self.model.threshold_base, self.model.threshold_delta)

    def _graph_current(self) -> bool:
        """Whether the whole-forward graph holds the model's pruning: its fusion, and its
        thresholds, their tensors untouched since last checked (a few microseconds), else
        compared by value."""
        if self.model.pruning.fuse != self._whole_fuse:
            return False
        stamp = self._thresholds_stamp()
        if stamp is not None and stamp == self._whole_stamp:
            return True
        if not torch.equal(self.model.thresholds().detach(), self._whole_thresholds):
            return False
        self._whole_stamp = stamp
        return True

    def whole(self, input_ids, attention_mask, token_type_ids):
        if self._whole is None or not self._graph_current():
            return None  # top-k, or the pruning changed since the graph was built
        run = self._whole
        ids = input_ids.numpy()
        types = token_type_ids.numpy() if token_type_ids is not None else np.zeros_like(ids)
        lengths = attention_mask.sum(dim=1).tolist()
        groups = self.groups(lengths) if len(lengths) > 1 else [[0]]
        calls = [(run.group if len(members) > 1 else run.lone if len(groups) == 1 else run.single,
                  self._feed(members, ids, types, lengths)) for members in groups]
        if run.pool is None or len(calls) == 1:
            outputs = _run_calls(calls)
        else:  # the calls shared out by their tokens, the largest first to the least loaded
            tokens = [sum(lengths[i] for i in members) for members in groups]
            shares, load = [[] for _ in range(self.threads)], [0] * self.threads
            for c in sorted(range(len(calls)), key=tokens.__getitem__, reverse=True):
                t = load.index(min(load))
                shares[t].append(c)
                load[t] += tokens[c]
            done = run.pool.map(_run_calls, [[calls[c] for c in share] for share in shares])
            outputs = [None] * len(calls)
            for share, results in zip(shares, done, strict=True):
                for c, result in zip(share, results, strict=True):
                    outputs[c] = result
        # assembled in numpy: a few microseconds, where torch's indexing costs tens a call
        logits = np.empty((len(lengths), outputs[0][0].shape[-1]), dtype=np.float32)
        kept = np.empty((len(lengths), self.encoder.num_layers), dtype=np.int64)
        for members, (call_logits, *call_kept) in zip(groups, outputs, strict=True):
            logits[members] = call_logits[:len(members)]
            kept[members] = packed_counts([lengths[i] for i in members],
                                          dict(zip(run.outputs[1:], call_kept, strict=True)),
                                          self.encoder.num_layers)
        return torch.from_numpy(logits), torch.from_numpy(kept)

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

    @property
    def one_input_per_call(self) -> bool:
        return self._whole is not None and self.group == 1

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads,
                "group": self.group,
                **({"int8_activations": "per row" if self.rows else "per call"}
                   if self.precision == "int8" else {}), "build_seconds": round(self.build_seconds, 2)}
