"""How the compact forward scales to the service's two workers: one Python thread of one
torch thread against two such threads side by side (each running all the batches), on
batches in arrival order, for each model and batch size.

    python scripts/worker_scaling.py models/reviews-minilm-ltp models/reviews-minilm \
        --dataset amazon-food --batch-sizes 8,32

Two threads scale below 2x when they queue for the GIL (every operator dispatch takes it)
or share the caches; the service's workers are such threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import torch

from app.settings import Settings
from ltp.bench.offline import BenchConfig, bench_batches
from ltp.core.artifact import load_artifact
from ltp.core.machine import tune_allocator
from ltp.data.encoding import encode_split


def seconds(artifact, shares: list[list]) -> float:
    """Wall time of one thread per list of batches, all started together."""
    def work(batches):
        torch.set_num_threads(1)
        with torch.inference_mode():
            for b in batches:
                artifact.model.run(b, mode="compact")

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--batch-sizes", default="8,32")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, best kept")
    parser.add_argument("--gil-switch-ms", type=float, default=Settings().gil_switch_ms,
                        help="Python's thread switch interval (default: the service's)")
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    sys.setswitchinterval(args.gil_switch_ms / 1e3)
    for path in args.models:
        artifact = load_artifact(path)
        encoded, _ = encode_split(artifact.tokenizer, args.dataset, "test", artifact.meta.max_length)
        inputs = encoded[: args.examples]
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            cfg = BenchConfig(batch_size=batch_size, order="arrival")
            batches = bench_batches(artifact, inputs, cfg)
            seconds(artifact, [batches[:2]])  # warm-up
            one, two = float("inf"), float("inf")
            for _ in range(args.rounds):
                one = min(one, seconds(artifact, [batches]))
                two = min(two, seconds(artifact, [batches, batches]))
            print(json.dumps({"model": path, "batch_size": batch_size,
                              "one_thread_seq_per_s": len(inputs) / one,
                              "two_threads_seq_per_s": 2 * len(inputs) / two,
                              "scaling": 2 * one / two}), flush=True)


if __name__ == "__main__":
    main()
