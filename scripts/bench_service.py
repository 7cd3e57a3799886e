"""Service benchmark: throughput against the offline forward on the same inputs, idle
overhead of one request over the model's own time, and resident memory.

    python scripts/bench_service.py --model sentiment-minilm-ltp --dataset rt-polarity

Starts `ltp serve` as a subprocess on a loopback port, measures, stops it, prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

from loadtest.processes import free_port, stop, wait_http
from ltp.core.artifact import load_artifact
from ltp.core.machine import tune_allocator
from ltp.core.text import encode
from ltp.data.datasets import load_dataset


def offline_seq_per_s(model_dir: Path, texts: list[str], batch_size: int, rounds: int) -> float:
    """The compact forward alone on the same inputs, length-sorted batches, best round."""
    tune_allocator()
    artifact = load_artifact(model_dir)
    encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length)
    batches = [b for _, b in artifact.batches(encoded, batch_size)]
    best = float("inf")
    with torch.inference_mode():
        for _ in range(rounds + 1):  # the first round warms up
            start = time.perf_counter()
            for b in batches:
                artifact.model.run(b, mode="compact")
            best = min(best, time.perf_counter() - start)
    return len(texts) / best


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/classify", {["Content-Type"] = "application/json"},
                    bodies[(i %% #bodies) + 1])
end
"""


def wrk_seq_per_s(url: str, texts: list[str], concurrency: int, model: str, seconds: int,
                  work: Path, per_request: int = 1) -> float:
    """Load from wrk (C, one thread): a client light enough not to be the bottleneck.
    Returns sequences per second (requests x ``per_request`` inputs)."""
    groups = [texts[i:i + per_request] for i in range(0, len(texts), per_request)]
    bodies = ",".join("[==[" + json.dumps({"inputs": g if per_request > 1 else g[0],
                                            "model": model}) + "]==]" for g in groups)
    script = work / "classify.lua"
    script.write_text(WRK_SCRIPT % bodies)
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw failed requests:\n{out}")
    return per_request * float(next(line.split()[1] for line in out.splitlines()
                                    if line.startswith("Requests/sec")))


async def service_seq_per_s(url: str, texts: list[str], concurrency: int, model: str) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(text: str) -> None:
            async with sem:
                r = await client.post("/classify", json={"inputs": text, "model": model})
                r.raise_for_status()

        await asyncio.gather(*(one(t) for t in texts[:64]))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(one(t) for t in texts))
        return len(texts) / (time.perf_counter() - start)


def idle_overhead_ms(url: str, texts: list[str], model: str) -> dict:
    """One request at a time: client-observed time minus the model's own batch time."""
    totals, overheads = [], []
    with httpx.Client(base_url=url, timeout=30) as client:
        for text in texts:
            start = time.perf_counter()
            r = client.post("/classify", json={"inputs": text, "model": model})
            total = (time.perf_counter() - start) * 1e3
            r.raise_for_status()
            totals.append(total)
            overheads.append(total - float(r.headers["x-inference-ms"]))
    return {"idle_total_ms_p50": statistics.median(totals),
            "idle_overhead_ms_p50": statistics.median(overheads),
            "idle_overhead_ms_p90": statistics.quantiles(overheads, n=10)[-1]}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models-dir", default="models")
    p.add_argument("--model", default="sentiment-minilm-ltp")
    p.add_argument("--dataset", default="rt-polarity")
    p.add_argument("--examples", type=int, default=1024)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    p.add_argument("--per-request", type=int, default=1, help="inputs per request (wrk load)")
    args = p.parse_args()

    texts = [e.text for e in load_dataset(args.dataset).test][: args.examples]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"LTP_MODELS": json.dumps([args.model]), "LTP_DEFAULT_MODEL": args.model,
                        "LTP_MAX_BATCH_SIZE": str(args.batch_size)}
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--models-dir",
                             args.models_dir, "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{url}/readyz", 120, proc)
        rss_idle = rss_mib(proc.pid)
        idle = idle_overhead_ms(url, texts[:100], args.model)
        if shutil.which("wrk"):
            client = "wrk"
            work = Path(tempfile.mkdtemp())
            wrk_seq_per_s(url, texts, args.concurrency, args.model, 3, work, args.per_request)
            service = [wrk_seq_per_s(url, texts, args.concurrency, args.model, args.seconds, work,
                                     args.per_request) for _ in range(args.rounds)]
        else:
            client = "httpx"
            service = [asyncio.run(service_seq_per_s(url, texts, args.concurrency, args.model))
                       for _ in range(args.rounds)]
        rss_loaded = rss_mib(proc.pid)
    finally:
        stop(proc, timeout_s=60)
    offline = offline_seq_per_s(Path(args.models_dir) / args.model, texts, args.batch_size,
                                args.rounds)
    result = {
        "model": args.model, "dataset": args.dataset, "examples": len(texts),
        "concurrency": args.concurrency, "load_client": client,
        "inputs_per_request": args.per_request,
        "service_seq_per_s": max(service),
        "service_seq_per_s_runs": service, "offline_seq_per_s": offline,
        "service_vs_offline": max(service) / offline, **idle,
        "rss_mib_idle": rss_idle, "rss_mib_after_load": rss_loaded,
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
