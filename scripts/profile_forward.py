"""Where the compact forward's time goes, per engine and precision, at batch 1 and batch 32:
matrix multiplies, ONNX Runtime's sessions, attention's other operators, other kernels, and
Python between operators with dispatch (what no operator accounts for), from torch.profiler;
per layer too; and ONNX Runtime's own profile of the whole-forward graph by operator type.
Writes a markdown table and the JSON it came from.

    python scripts/profile_forward.py models/reviews-minilm-ltp --dataset amazon-food \
        --dense models/reviews-minilm --out reports/profile-forward-amazon-food
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import onnx
import torch

from ltp.bench.profiling import layer_ranges, profile_forward
from ltp.core.artifact import load_artifact
from ltp.core.machine import cpu_name, tune_allocator
from ltp.core.precision import native_precisions, read_cpu_features
from ltp.data.encoding import encode_split

RUNTIMES = (("eager", "fp32"), ("eager", "bf16"), ("eager", "int8"), ("ort", "fp32"), ("ort", "int8"))
SPLIT = ("matmul", "ort_sessions", "attention_other", "other_kernels", "python_and_dispatch")


def profile(path: str, dataset: str, singles: int, batched: int, threads: int) -> list[dict]:
    rows = []
    native = native_precisions(read_cpu_features())
    for engine, dtype in RUNTIMES:
        if dtype not in native:
            continue  # emulated bf16 would take hours and say nothing
        artifact = load_artifact(path, dtype=dtype, engine=engine, threads=threads)
        encoded, _ = encode_split(artifact.tokenizer, dataset, "test", artifact.meta.max_length)
        for batch_size, count in ((1, singles), (32, batched)):
            batches = [b for _, b in artifact.batches(encoded[:count], batch_size)]

            def run(batches=batches, artifact=artifact) -> None:
                for b in batches:
                    artifact.model.run(b)

            # the ort engine runs a threshold model as one graph an input: no layers to range
            ranges = nullcontext() if engine == "ort" else layer_ranges(artifact.model)
            with torch.inference_mode(), ranges:
                result = profile_forward(run, repeats=2)
            rows.append({"engine": engine, "dtype": dtype, "batch_size": batch_size,
                         "ms_per_input": result["wall_ms"] / count, **result})
    return rows


def whole_sessions(model, folder: Path, profile: bool = False) -> dict[str, tuple[object, int]]:
    """The ort engine's one-input whole-forward graph of ``model``, fp32 and int8, each as an
    ONNX Runtime session on one thread (profiled into ``folder`` with ``profile``) and the
    number of nodes in its graph."""
    import onnxruntime as ort

    from ltp.core.engines.ort import export_whole, quantize_graph, session_options

    graph, _ = export_whole(model, folder)
    sessions = {}
    for dtype, file in (("fp32", graph), ("int8", quantize_graph(graph))):
        options = session_options(1)
        if profile:
            options.enable_profiling, options.profile_file_prefix = True, f"{folder}/{dtype}"
        sessions[dtype] = (ort.InferenceSession(str(file), options,
                                                providers=["CPUExecutionProvider"]),
                           len(onnx.load(str(file)).graph.node))
    return sessions


def feed(session, ids: list[int]) -> dict[str, np.ndarray]:
    """One input's token ids (and zero type ids, where the graph takes them)."""
    names = {i.name for i in session.get_inputs()}
    return {k: v for k, v in (("ids", np.asarray(ids, dtype=np.int64)),
                              ("types", np.zeros(len(ids), dtype=np.int64))) if k in names}


def ort_operators(path: str, dataset: str, count: int, label: str = "ltp") -> list[dict]:
    """ONNX Runtime's profile of the whole-forward graph (fp32 and int8) of the artifact at
    ``path`` on one thread over ``count`` inputs: milliseconds per input by operator type,
    and the wall time per input; each row named by ``label``."""
    artifact = load_artifact(path)
    encoded, _ = encode_split(artifact.tokenizer, dataset, "test", artifact.meta.max_length)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype, (session, graph_nodes) in whole_sessions(artifact.model, Path(tmp),
                                                            profile=True).items():
            feeds = [feed(session, e.input_ids) for e in encoded[:count]]
            start = time.perf_counter()
            for one in feeds:
                session.run(None, one)
            wall = (time.perf_counter() - start) / len(feeds) * 1e3
            ops: Counter = Counter()
            nodes: Counter = Counter()
            for event in json.loads(Path(session.end_profiling()).read_text()):
                if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
                    ops[event["args"]["op_name"]] += event["dur"] / 1e3 / len(feeds)
                    nodes[event["args"]["op_name"]] += 1 / len(feeds)
            rows.append({"model": label, "path": path, "dtype": dtype,
                         "wall_ms_per_input": wall, "kernel_ms_per_input": sum(ops.values()),
                         "nodes": graph_nodes,
                         "nodes_run_per_input": round(sum(nodes.values()), 1),
                         "operators_ms": dict(ops.most_common())})
    return rows


LENGTHS = (4, 16, 32, 64, 96, 128, 192, 256)  # tokens an input, for the cost of a call


def call_costs(paths: dict[str, str], dataset: str, count: int = 20, rounds: int = 3) -> dict:
    """ONNX Runtime's whole-forward graph of each model in ``paths`` (label -> artifact) on
    one thread, unprofiled: ms a call (best of ``rounds`` over ``count`` test inputs cut to
    each of ``LENGTHS`` tokens, the models' calls in turns): the cost of a call of the
    fewest tokens (its floor: weights streamed, operators dispatched, whatever the tokens)
    and what each token adds on the way to 128 tokens."""
    sessions = {}
    for label, path in paths.items():
        artifact = load_artifact(path)
        with tempfile.TemporaryDirectory() as tmp:  # the graphs are in memory once loaded
            for dtype, (session, _) in whole_sessions(artifact.model, Path(tmp)).items():
                sessions[label, dtype] = session
    encoded, _ = encode_split(artifact.tokenizer, dataset, "test", max(LENGTHS))
    ms: dict[tuple, dict[int, float]] = {key: {} for key in sessions}
    for n in LENGTHS:
        cut = [e.input_ids[:n - 1] + e.input_ids[-1:] for e in encoded if e.num_tokens >= n][:count]
        feeds = {key: [feed(session, ids) for ids in cut] for key, session in sessions.items()}
        best = {key: float("inf") for key in sessions}
        for _ in range(rounds + 1):  # the first round warms each shape up
            for key, session in sessions.items():
                start = time.perf_counter()
                for one in feeds[key]:
                    session.run(None, one)
                best[key] = min(best[key], (time.perf_counter() - start) / len(cut) * 1e3)
        for key in sessions:
            ms[key][n] = best[key]
    low, high = LENGTHS[0], 128  # the floor of a call, and a typical review's length
    return {f"{label}-{dtype}": {"ms_by_tokens": by_n, "fixed_ms": by_n[low],
                                 "ms_per_token": (by_n[high] - by_n[low]) / (high - low)}
            for (label, dtype), by_n in ms.items()}


def call_cost_table(costs: dict) -> list[str]:
    """Markdown: ms a call at each length, its floor and what each token adds."""
    lines = ["| graph | " + " | ".join(f"{n} tokens" for n in LENGTHS) +
             " | floor ms | us a token to 128 |", "|---" * (len(LENGTHS) + 3) + "|"]
    for name, c in costs.items():
        lines.append(f"| {name} | " + " | ".join(f"{c['ms_by_tokens'][n]:.2f}" for n in LENGTHS) +
                     f" | {c['fixed_ms']:.2f} | {c['ms_per_token'] * 1e3:.1f} |")
    return lines


def operator_comparison(operators: list[dict], dtype: str) -> list[str]:
    """Markdown rows: each operator type's ms per input in the LTP graph against the dense
    parent's (same inputs, one thread), the largest first, then the totals."""
    ltp = next(r for r in operators if r["model"] == "ltp" and r["dtype"] == dtype)
    dense = next(r for r in operators if r["model"] == "dense" and r["dtype"] == dtype)
    names = sorted(set(ltp["operators_ms"]) | set(dense["operators_ms"]),
                   key=lambda op: -max(ltp["operators_ms"].get(op, 0), dense["operators_ms"].get(op, 0)))
    lines = [f"| operator ({dtype}) | LTP ms | dense ms | LTP / dense |", "|---|---|---|---|"]
    for op in names:
        a, b = ltp["operators_ms"].get(op, 0.0), dense["operators_ms"].get(op, 0.0)
        if max(a, b) < 0.02:
            continue
        lines.append(f"| {op} | {a:.2f} | {b:.2f} | {a / b:.2f} |" if b else f"| {op} | {a:.2f} | - | - |")
    for what, key in (("kernels", "kernel_ms_per_input"), ("wall", "wall_ms_per_input")):
        lines.append(f"| **{what}** | {ltp[key]:.2f} | {dense[key]:.2f} | {ltp[key] / dense[key]:.2f} |")
    between = [r["wall_ms_per_input"] - r["kernel_ms_per_input"] for r in (ltp, dense)]
    lines.append(f"| **between operators** | {between[0]:.2f} | {between[1]:.2f} | "
                 f"{between[0] / between[1]:.2f} |")
    lines.append(f"| **operators run** | {ltp['nodes_run_per_input']:.0f} | "
                 f"{dense['nodes_run_per_input']:.0f} | "
                 f"{ltp['nodes_run_per_input'] / dense['nodes_run_per_input']:.2f} |")
    return lines


def markdown(rows: list[dict], args, threads: int, operators: list[dict], costs: dict) -> str:
    lines = [f"# Where the compact forward's time goes ({args.dataset} test)", "",
             f"`python scripts/profile_forward.py {args.model} --dataset {args.dataset}`: "
             f"{args.singles} inputs one at a time, {args.batched} in length-sorted batches of 32; "
             f"torch.profiler, 2 repeats; CPU {cpu_name()}, {threads} threads. Shares of the "
             "profiled wall time; \"python and dispatch\" is what no operator accounts for.", "",
             "| engine | dtype | batch | ms per input | " + " | ".join(SPLIT) + " |",
             "|---|---|---|---|" + "---|" * len(SPLIT)]
    for r in rows:
        # a batch on the ort engine runs its inputs in ONNX Runtime's calls on worker threads,
        # which torch.profiler does not see: only the wall time means something there
        unseen = r["engine"] == "ort" and r["batch_size"] > 1 and threads > 1
        shares = " | ".join("-" if unseen else f"{r['time_split'][k] * 100:.0f}%" for k in SPLIT)
        lines.append(f"| {r['engine']} | {r['dtype']} | {r['batch_size']} | "
                     f"{r['ms_per_input']:.2f} | {shares} |")
    lines += ["", "\"-\": the ort engine runs a batch's inputs side by side on threads of its own, "
              "which torch.profiler does not see; ONNX Runtime's own profile is below."]
    lines += ["", "Per layer, ms per run of all inputs (eager fp32):", "",
              "| batch | " + " | ".join(f"layer {x['layer']}" for x in rows[0]["layers"]) + " |",
              "|---|" + "---|" * len(rows[0]["layers"])]
    for r in rows[:2]:
        lines.append(f"| {r['batch_size']} | " + " | ".join(f"{x['ms']:.1f}" for x in r["layers"]) + " |")
    lines += ["", f"The ort engine's whole-forward graph, ONNX Runtime's own profile on one thread "
              f"over {args.singles * 2} inputs (ms per input; wall time includes ONNX Runtime's "
              "work between operators):", "",
              "| model | graph | nodes | wall ms | kernel ms | top operators (ms) |",
              "|---|---|---|---|---|---|"]
    for r in operators:
        top = ", ".join(f"{op} {ms:.2f}" for op, ms in list(r["operators_ms"].items())[:6])
        lines.append(f"| {r['path']} | {r['dtype']} | {r['nodes']} | {r['wall_ms_per_input']:.2f} | "
                     f"{r['kernel_ms_per_input']:.2f} | {top} |")
    if any(r["model"] == "dense" for r in operators):
        lines += ["", f"Operator by operator, the LTP graph against its dense parent's "
                  f"(`--dense {args.dense}`) on the same inputs: what pruning saves in each, and "
                  "what it adds (the scores, the keep rule and its gathers).", ""]
        for dtype in ("fp32", "int8"):
            lines += [*operator_comparison(operators, dtype), ""]
    if costs:
        lines += ["", "The cost of one call of each whole-forward graph against its tokens (one "
                  "thread, no profiler: ms a call, the best of 3 rounds over 20 test inputs cut "
                  "to each length, the graphs in turns): the floor of a call (4 tokens: every "
                  "weight streamed once, every operator dispatched, whatever the tokens), and "
                  "what each token adds up to 128. Pruning cuts only the second; "
                  "an engine that runs one input a call pays the first for every input.", "",
                  *call_cost_table(costs), ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", default="amazon-food")
    parser.add_argument("--singles", type=int, default=64)
    parser.add_argument("--batched", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="reports/profile-forward")
    parser.add_argument("--dense", help="the dense parent: its whole-forward graph profiled "
                        "beside, operator by operator")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(args.threads)
    rows = profile(args.model, args.dataset, args.singles, args.batched, args.threads)
    operators = ort_operators(args.model, args.dataset, args.singles * 2)
    costs = {}
    if args.dense:
        operators += ort_operators(args.dense, args.dataset, args.singles * 2, label="dense")
        costs = call_costs({"ltp": args.model, "dense": args.dense}, args.dataset)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(
        {"runs": rows, "ort_operators": operators, "call_costs": costs}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, args, args.threads, operators, costs))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
