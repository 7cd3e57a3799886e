"""What a CPU user would run instead: dense runtimes against LTP compact, on the same inputs.

Runtimes (one process, the same tokenised inputs, length-sorted batches):

* ``torch-fp32``, ``torch-bf16``: the dense parent's Hugging Face model (SDPA attention);
* ``ort-fp32``: the dense parent exported with ``torch.onnx`` (legacy exporter, opset 17),
  ONNX Runtime with every graph optimisation;
* ``ort-int8``: the same graph through ``onnxruntime.quantization.quantize_dynamic``
  (int8 per-channel weights, activations quantised at run time);
* ``ltp-fp32``, ``ltp-bf16``, ``ltp-int8``: the LTP model's compact forward, eager engine;
* ``ltp-ort-fp32``, ``ltp-ort-int8``: the same on the ort engine (``ltp.core.engines.ort``);
* ``dense-ort-fp32``, ``dense-ort-int8``: the dense parent on that same engine (its whole
  forward as one graph an input, inputs side by side on the threads): the dense model as this
  product would serve it, so LTP's gain on one engine (``same_engine``: the speedup against
  it, and its efficiency, the speedup times the FLOPs ratio of the two forwards on that
  engine, ``relative_engine_flops``: 1.0 where every FLOP removed is time saved). These rows
  are not among the dense runtimes a user would pick instead (``DENSE``).

Per runtime: accuracy on the split, sequences per second on batches of ``batch_size``
(best of ``rounds`` passes, the runtimes alternating pass by pass so that drift hits all
alike), and the batch-1 latency (``measure`` says how each is taken).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ltp.bench.timing import alternate, timed
from ltp.core.artifact import load_artifact
from ltp.core.machine import device_name
from ltp.core.text import PaddedBatch, pad_batch, padded_batches
from ltp.data.encoding import encode_split

log = logging.getLogger(__name__)

RUNTIMES = ("torch-fp32", "torch-bf16", "ort-fp32", "ort-int8", "dense-ort-fp32", "dense-ort-int8",
            "ltp-fp32", "ltp-bf16", "ltp-int8", "ltp-ort-fp32", "ltp-ort-int8")
DENSE = ("torch", "ort")  # the dense runtimes' kinds: what a user would run instead
Forward = Callable[[PaddedBatch], torch.Tensor]  # one padded batch -> (B, C) logits


def native_runtimes(features: set[str] | None = None) -> list[str]:
    """The runtimes whose precision this CPU computes natively (every one but bf16 without
    AVX512-BF16 or AMX, where emulated bf16 would take hours on a test split)."""
    from ltp.core.precision import native_precisions, read_cpu_features

    native = native_precisions(read_cpu_features() if features is None else features)
    skipped = [name for name in RUNTIMES if name.endswith("-bf16") and "bf16" not in native]
    if skipped:
        log.warning("skipping %s: this CPU has no native bf16 (--runtimes runs them anyway)",
                    ", ".join(skipped))
    return [name for name in RUNTIMES if name not in skipped]


@dataclass
class RuntimeBenchConfig:
    batch_size: int = 32
    max_length: int = 256
    max_examples: int = 0  # inputs of the accuracy pass (0: the whole split)
    timed_examples: int = 256  # the first this many are timed at batch_size (0: all)
    latency_examples: int = 100  # the first this many are timed one at a time
    rounds: int = 3
    runtimes: list[str] = field(default_factory=list)  # empty: all


def _hf_forward(artifact) -> Forward:
    def run(b: PaddedBatch) -> torch.Tensor:
        return artifact.model.hf(input_ids=b.input_ids, attention_mask=b.attention_mask,
                                 token_type_ids=b.token_type_ids).logits
    return run


def _ltp_forward(artifact) -> Forward:
    def run(b: PaddedBatch) -> torch.Tensor:
        return artifact.model.run(b, mode="compact").logits
    return run


def export_onnx(artifact, path: Path) -> Path:
    """The artifact's Hugging Face model as ONNX: inputs (B, T) int64, output logits (B, C)."""
    hf = artifact.model.hf
    ids = torch.tensor([[artifact.tokenizer.cls_token_id or 0, 5, 6, 7]])
    names = ["input_ids", "attention_mask"]
    args: tuple = (ids, torch.ones_like(ids))
    if "token_type_ids" in hf.forward.__code__.co_varnames:
        names.append("token_type_ids")
        args = (*args, torch.zeros_like(ids))
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"logits": {0: "batch"}}
    torch.onnx.export(hf, args, str(path), input_names=names, output_names=["logits"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def _ort_forward(onnx_path: Path, threads: int) -> Forward:
    import onnxruntime as ort

    options = ort.SessionOptions()  # ONNX Runtime's defaults, as a user runs it (spinning on)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}

    def run(b: PaddedBatch) -> torch.Tensor:
        feed = {"input_ids": b.input_ids.numpy(), "attention_mask": b.attention_mask.numpy()}
        if "token_type_ids" in names:
            types = b.token_type_ids if b.token_type_ids is not None else torch.zeros_like(b.input_ids)
            feed["token_type_ids"] = types.numpy()
        return torch.from_numpy(session.run(["logits"], feed)[0])
    return run


def build_runtimes(ltp_dir: str | Path, dense_dir: str | Path, names: list[str],
                   workdir: Path) -> dict[str, Forward]:
    """A forward per runtime name; ``ort-*`` are skipped (with a warning) without onnxruntime."""
    forwards: dict[str, Forward] = {}
    onnx_path = None
    for name in names:
        kind, precision = name.rsplit("-", 1)
        if kind in ("ltp", "ltp-ort", "dense-ort"):
            engine = "eager" if kind == "ltp" else "ort"
            if engine == "ort" and not _has_ort(name):
                continue
            forwards[name] = _ltp_forward(
                _unpruned_on_ort(dense_dir, precision) if kind == "dense-ort"
                else load_artifact(ltp_dir, dtype=precision, engine=engine))
        elif kind == "torch":
            forwards[name] = _hf_forward(load_artifact(dense_dir, dtype=precision))
        elif kind == "ort":
            if not _has_ort(name):
                continue
            from ltp.core.engines.ort import quantize_graph

            if onnx_path is None:
                onnx_path = export_onnx(load_artifact(dense_dir), workdir / "dense.onnx")
            path = onnx_path
            if precision == "int8":
                path = quantize_graph(onnx_path, workdir / "dense-int8.onnx", weights_only=False)
            forwards[name] = _ort_forward(path, torch.get_num_threads())
        else:
            raise ValueError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    return forwards


def _unpruned_on_ort(path: str | Path, precision: str):
    """The artifact at ``path`` with every threshold at zero (a dense parent's already are),
    on the ort engine: its whole forward, nothing pruned, as the engine runs LTP models."""
    artifact = load_artifact(path)
    pruning = artifact.model.pruning
    artifact.model.set_pruning(replace(pruning, final_threshold=0.0, delta=[0.0] * pruning.num_layers))
    artifact.model.set_engine("ort", precision=precision)
    return artifact


def _nothing() -> None:
    """No warm-up: the accuracy pass was one."""


def _has_ort(name: str) -> bool:
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        log.warning("onnxruntime is not installed: skipping %s", name)
        return False
    return True


def _pass(forward: Forward, batches: list[PaddedBatch]) -> torch.Tensor:
    return torch.cat([forward(b).argmax(-1) for b in batches])


def measure(forwards: dict[str, Forward], encoded, labels: list[int], pad_id: int,
            cfg: RuntimeBenchConfig, progress: bool = False) -> tuple[list[dict], dict]:
    """Per runtime (a row each, and the counts of inputs), on the same inputs: accuracy on
    all of ``encoded``; seq/s on the first ``cfg.timed_examples`` in length-sorted batches
    (best of ``cfg.rounds`` passes, the runtimes alternating pass by pass); batch-1 p50 and
    p90 latency over the first ``cfg.latency_examples`` inputs one at a time (a block per
    runtime: ONNX Runtime's default thread pool spins after a call, which would slow down
    whichever runtime came next).
    ``progress``: a bar on stderr."""
    grouped = padded_batches(encoded, pad_id, cfg.batch_size)
    gold = torch.tensor([labels[i] for g, _ in grouped for i in g])
    timed_inputs = encoded[: cfg.timed_examples or len(encoded)]
    timed_batches = [b for _, b in padded_batches(timed_inputs, pad_id, cfg.batch_size)]
    singles = [pad_batch([e], pad_id) for e in encoded[: cfg.latency_examples]]
    latency: dict[str, list[float]] = {name: [] for name in forwards}
    correct: dict[str, int] = {}
    bar = tqdm(total=(cfg.rounds + 2) * len(forwards), desc="runtimes", unit="pass",
               disable=not progress, dynamic_ncols=True)
    with torch.inference_mode(), bar:
        for name, forward in forwards.items():  # the accuracy pass warms each runtime up
            correct[name] = int((_pass(forward, [b for _, b in grouped]) == gold).sum())
            bar.update()
        times = alternate({name: partial(_pass, f, timed_batches) for name, f in forwards.items()},
                          cfg.rounds, warmup={name: _nothing for name in forwards},
                          after_run=bar.update)
        for name, forward in forwards.items():  # a block each: a spinning thread pool
            _pass(forward, singles[:1])             # must not slow the next runtime down
            latency[name] = [timed(partial(_pass, forward, [single])) for single in singles]
            bar.update()
    return [{
        "runtime": name,
        "accuracy": correct[name] / len(encoded),
        "seq_per_s": len(timed_inputs) / min(times[name]),
        "p50_latency_ms_b1": statistics.median(latency[name]) * 1e3,
        "p90_latency_ms_b1": float(np.percentile(latency[name], 90)) * 1e3,
        "examples": len(encoded),
    } for name in forwards], {
        "timed_examples": len(timed_inputs), "latency_examples": len(singles),
        "rounds_spread": {name: max(s) / min(s) - 1 for name, s in times.items()}}


def run_runtimes(ltp_dir: str, dense_dir: str | None, dataset: str, split: str,
                 cfg: RuntimeBenchConfig, out_dir: str | Path | None = "reports",
                 progress: bool = False) -> dict:
    """Measure each runtime (``cfg.runtimes``, or ``native_runtimes()``); with ``out_dir``,
    write ``runtimes-<dataset>.md``, ``.png`` and ``.json``."""
    dense_dir = dense_dir or ltp_dir
    names = cfg.runtimes or native_runtimes()
    reference = load_artifact(ltp_dir)
    encoded, labels = encode_split(reference.tokenizer, dataset, split, cfg.max_length)
    if cfg.max_examples:
        encoded, labels = encoded[: cfg.max_examples], labels[: cfg.max_examples]
    with tempfile.TemporaryDirectory() as tmp:
        forwards = build_runtimes(ltp_dir, dense_dir, names, Path(tmp))
        rows, counts = measure(forwards, encoded, labels, reference.tokenizer.pad_token_id, cfg,
                               progress)
    best = compare_with_dense(rows)
    flops = _flops(reference, encoded)
    same_engine(rows, flops["relative_engine_flops"])
    result = {
        "rows": rows, "dataset": dataset, "split": split, "ltp_model": str(ltp_dir),
        "dense_model": str(dense_dir), "batch_size": cfg.batch_size, "max_length": cfg.max_length,
        "rounds": cfg.rounds, "threads": torch.get_num_threads(),
        "device_name": device_name(torch.device("cpu")), "torch": torch.__version__,
        "onnxruntime": _ort_version(),
        "relative_flops": flops["relative_flops"],
        "relative_engine_flops": flops["relative_engine_flops"], **counts, **best,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"runtimes-{Path(dataset).stem}"  # a data file's name without its folder
        chart = plot(rows, out / f"{stem}.png", f"{Path(dataset).stem} {split}: seq/s, batch "
                     f"{cfg.batch_size}, {result['threads']} threads")
        (out / f"{stem}.md").write_text(report(result, chart.name))
        (out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
        result["report"] = str(out / f"{stem}.md")
    return result


def _flops(artifact, encoded) -> dict:
    """The LTP model's FLOPs on the inputs, eager fp32 (``flops_summary``): relative to the
    dense model (paper formula) and to its own forward with nothing pruned."""
    from ltp.bench.offline import flops_summary

    with torch.inference_mode():
        outputs = [artifact.model.run(b) for _, b in artifact.batches(encoded, 64)]
    return flops_summary(outputs)


def compare_with_dense(rows: list[dict]) -> dict:
    """Each row's speed against torch fp32 and against the best dense runtime (highest seq/s
    at the batch size; lowest p50 latency at batch 1), in place; returns which those are."""
    dense = [r for r in rows if r["runtime"].split("-")[0] in DENSE]
    base = next((r["seq_per_s"] for r in rows if r["runtime"] == "torch-fp32"), None)
    best = max(dense, key=lambda r: r["seq_per_s"]) if dense else None
    fastest = min(dense, key=lambda r: r["p50_latency_ms_b1"]) if dense else None
    for row in rows:
        row["x_torch_fp32"] = row["seq_per_s"] / base if base else None
        row["x_best_dense"] = row["seq_per_s"] / best["seq_per_s"] if best else None
        row["b1_vs_fastest_dense"] = (row["p50_latency_ms_b1"] / fastest["p50_latency_ms_b1"]
                                              if fastest else None)
    return {"best_dense": best["runtime"] if best else None,
            "fastest_dense_b1": fastest["runtime"] if fastest else None}


def same_engine(rows: list[dict], engine_flops: float) -> None:
    """Each ``ltp-ort-P`` row against ``dense-ort-P`` (the dense parent on the same engine and
    precision), in place: ``same_engine`` holds the speedup at the batch size and at batch 1
    (p50), and each times ``engine_flops`` (LTP's FLOPs over the dense parent's on that
    engine): the efficiency, 1.0 where every FLOP removed is time saved."""
    by_name = {r["runtime"]: r for r in rows}
    for row in rows:
        dense = by_name.get(row["runtime"].replace("ltp-ort-", "dense-ort-", 1))
        if not row["runtime"].startswith("ltp-ort-") or dense is None:
            row["same_engine"] = None
            continue
        batch = row["seq_per_s"] / dense["seq_per_s"]
        single = dense["p50_latency_ms_b1"] / row["p50_latency_ms_b1"]
        row["same_engine"] = {"speedup": batch, "speedup_b1": single,
                              "efficiency": batch * engine_flops,
                              "efficiency_b1": single * engine_flops}


def _ort_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def plot(rows: list[dict], path: Path, title: str) -> Path:
    """One horizontal bar chart: seq/s per runtime, accuracy at the end of each bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    names = [r["runtime"] for r in rows][::-1]
    speeds = np.array([r["seq_per_s"] for r in rows][::-1])
    colors = ["tab:orange" if n.startswith("ltp") else "tab:gray" for n in names]
    ax.barh(names, speeds, color=colors)
    for y, row in enumerate(rows[::-1]):
        ax.text(row["seq_per_s"], y, f" {row['seq_per_s']:.0f} seq/s, {row['accuracy'] * 100:.1f}%",
                va="center", fontsize=8)
    ax.set_xlim(0, speeds.max() * 1.45)
    ax.set_xlabel("sequences per second (higher is better)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(result: dict, chart: str) -> str:
    """Markdown: conditions, the table, the chart."""
    rows, first = result["rows"], result
    lines = [
        f"# Runtimes on {result['dataset']} ({result['split']})",
        "",
        f"`ltp bench-runtimes`: LTP model `{result['ltp_model']}` "
        f"(relative FLOPs {result['relative_flops']:.3f}, paper formula), dense parent "
        f"`{result['dense_model']}`. Accuracy on {rows[0]['examples']} inputs (max length "
        f"{result['max_length']}); seq/s on the first {first['timed_examples']} in length-sorted "
        f"batches of {result['batch_size']}, best of {result['rounds']} passes, the runtimes "
        f"alternating; batch-1 latency over the first {first['latency_examples']} inputs one at "
        f"a time, a block per runtime. CPU: {result['device_name']}, "
        f"{result['threads']} threads; torch {result['torch']}, onnxruntime "
        f"{result['onnxruntime'] or '-'}. One run.",
        "",
        f"| runtime | accuracy | seq/s, batch {result['batch_size']} | x torch fp32 | "
        f"x best dense ({first['best_dense']}) | rounds spread | p50 ms, batch 1 | p90 ms | "
        f"p50 / fastest dense ({first['fastest_dense_b1']}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['runtime']} | {r['accuracy'] * 100:.1f} | {r['seq_per_s']:.1f} | "
            f"{fmt(r['x_torch_fp32'], '.2f')} | {fmt(r['x_best_dense'], '.2f')} | "
            f"{result['rounds_spread'][r['runtime']]:.2f} | {r['p50_latency_ms_b1']:.1f} | "
            f"{r['p90_latency_ms_b1']:.1f} | "
            f"{fmt(r['b1_vs_fastest_dense'], '.2f')} |")
    same = [r for r in rows if r.get("same_engine")]
    if same:
        lines += ["", "Same engine, same precision: LTP on the ort engine against its dense parent "
                  "on it (`dense-ort-*`). Efficiency is the speedup times LTP's FLOPs over the "
                  f"dense parent's on that engine ({result['relative_engine_flops']:.3f}: whole "
                  "model, both with the last layer's classifier query alone); 1.0 where every "
                  "FLOP removed is time saved.", "",
                  "| runtime | speedup, batch "
                  f"{result['batch_size']} | efficiency | speedup, batch 1 (p50) | efficiency |",
                  "|---|---|---|---|---|"]
        for r in same:
            e = r["same_engine"]
            lines.append(f"| {r['runtime']} | {e['speedup']:.2f} | {e['efficiency']:.2f} | "
                         f"{e['speedup_b1']:.2f} | {e['efficiency_b1']:.2f} |")
    lines += ["", f"![runtimes]({chart})", ""]
    return "\n".join(lines)
