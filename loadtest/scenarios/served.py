"""``served``: each model (and precision, and setting) through the service, one text a
request, against the same model's offline compact forward at batch 32, and where the
service's CPU went (client, event loop, inference workers).

    python -m loadtest served --models reviews-minilm-ltp,reviews-minilm --dtypes fp32,int8 \\
        --repeats 2 --out reports/served
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from loadtest.reports import served_report
from loadtest.results import summarize
from loadtest.scenarios.common import at_least_one, finish, server_dir_argument, start_service
from loadtest.traffic import bodies_for, drive, idle_cpu_seconds, texts_of, thread_cpu_seconds


def offline_seq_per_s(models_dir: str, model: str, texts: list[str], dtype: str,
                      batch_size: int = 32, rounds: int = 3) -> float:
    """The compact forward alone on ``texts`` in length-sorted batches, every core, in this
    process: what the service's throughput is measured against (best of ``rounds``)."""
    import torch

    from app.engine.backend import Backend
    from ltp.core.artifact import load_artifact
    from ltp.core.machine import tune_allocator
    from ltp.core.text import encode, length_sorted_batches

    tune_allocator()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    artifact = load_artifact(Path(models_dir) / model, dtype=dtype)
    backend = Backend({model: artifact})
    encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length)
    batches = [[encoded[i] for i in b] for b in length_sorted_batches(encoded, batch_size)]
    backend.forward(model, batches[0])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            backend.forward(model, batch)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def offline_cpu_ms(seq_per_s: float) -> float:
    """CPU milliseconds per sequence of the offline forward, which keeps every core busy."""
    return len(os.sched_getaffinity(0)) / seq_per_s * 1e3


def served(args: argparse.Namespace) -> dict:
    """Each of ``args.repeats`` rounds runs every cell, so drift hits them all alike; the
    offline figure is measured once per model and precision."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    offline: dict[tuple[str, str], float] = {}
    rows = []
    for repeat in range(1, args.repeats + 1):
        for dtype in args.dtypes.split(","):
            for model in args.models.split(","):
                if (model, dtype) not in offline:
                    offline[model, dtype] = offline_seq_per_s(args.models_dir, model, texts, dtype)
                for variant in args.grid.split(";"):
                    s = served_cell(args, out, model, ["--dtype", dtype, *variant.split()], texts)
                    rows.append({"model": model, "dtype": dtype, "settings": variant or "(defaults)",
                                 "repeat": repeat, "offline_seq_per_s": offline[model, dtype],
                                 "served_req_per_s": s["accepted_per_s"],
                                 "served_over_offline": s["accepted_per_s"] / offline[model, dtype],
                                 "p50_ms": s["accepted_ms"]["p50"], "p99_ms": s["accepted_ms"]["p99"],
                                 "statuses": s["statuses"], "loop_cores": s["loop_cores"],
                                 "worker_cores": s["worker_cores"], "client_cores": s["client_cores"],
                                 "idle_cores": s["idle_cores"],
                                 "loop_cpu_ms_per_request": s["loop_cpu_ms_per_request"],
                                 "worker_cpu_ms_per_request": s["worker_cpu_ms_per_request"],
                                 "offline_cpu_ms_per_seq": offline_cpu_ms(offline[model, dtype])})
                    (out / "result.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "report.md").write_text(served_report(rows, args) + "\n")
    return {"rows": rows}


def served_cell(args, out: Path, model: str, flags: list[str], texts: list[str]) -> dict:
    with start_service(args, out, model, flags) as server:
        bodies = bodies_for(texts, 1, count=len(texts))
        drive(server.url, bodies[:64], args.clients, 3)  # warm, untimed
        before, start = thread_cpu_seconds(server.pid), time.monotonic()
        idle = idle_cpu_seconds()
        client = time.process_time()  # the load generator runs in this process, on the same cores
        run = drive(server.url, bodies, args.clients, args.duration)
        client = time.process_time() - client
        idle = idle_cpu_seconds() - idle
        after, elapsed = thread_cpu_seconds(server.pid), time.monotonic() - start
    summary = summarize(run, args.duration, 1)
    return (summary | cpu_split(server.pid, before, after, elapsed, summary["statuses"].get("200", 0))
            | {"client_cores": client / elapsed, "idle_cores": idle / elapsed})


def cpu_split(pid: int, before: dict[int, float], after: dict[int, float], elapsed: float,
              answered: int) -> dict:
    """Where the service's CPU went during a run: the main thread (the event loop, with
    tokenising and the HTTP work) against the other threads (the inference workers), in
    cores, and each side's CPU per answered request."""
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    loop = used.pop(pid, 0.0)
    workers = sum(used.values())
    def per_request(seconds: float) -> float | None:
        return seconds / answered * 1e3 if answered else None

    return {"loop_cores": loop / elapsed, "worker_cores": workers / elapsed,
            "worker_cpu_ms_per_request": per_request(workers),
            "loop_cpu_ms_per_request": per_request(loop)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default="models")
    p.add_argument("--models", default="reviews-minilm-ltp,reviews-minilm",
                   help="comma-separated; with two, LTP first and its dense parent second")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--dtypes", default="fp32", help="comma-separated: fp32,bf16")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--grid", default="", help="';'-separated sets of `ltp serve` flags, e.g. "
                   "'--max-padding-ratio 0.3;--max-padding-ratio 1.0'")
    server_dir_argument(p)
    p.add_argument("--repeats", type=at_least_one, default=1,
                   help="rounds over all the cells, the spread over them reported; each cell "
                   "starts its own service, so a round takes cells x (start-up + 3 s + duration)")
    p.add_argument("--out", required=True)


def main(args: argparse.Namespace) -> int:
    return finish(served(args), Path(args.out))
