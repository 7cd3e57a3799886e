"""What tokenising costs a text: the service's way (each request's text through
``ltp.core.text.encode``, a fixed copy of the Rust tokenizer, on the event loop) against batches
of the size the service's queue forms, and against calling the Hugging Face tokenizer.
CPU milliseconds a text (all threads of this process), median and range of the rounds,
the ways taking turns within each round.

    python scripts/tokenize_cost.py models/reviews-minilm-ltp --dataset amazon-food

Batching would move tokenising into the inference workers, which are what limits the
service's throughput; it pays only if a text costs less CPU in a batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from ltp.core.artifact import load_artifact
from ltp.core.text import encode
from ltp.data.datasets import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8, help="texts a batch (the service's mean)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    artifact = load_artifact(args.model)
    tokenizer, max_length = artifact.tokenizer, artifact.meta.max_length
    texts = [e.text for e in load_dataset(args.dataset).test][: args.examples]
    def hugging_face(batch: list[str]) -> list[list[int]]:
        return tokenizer(batch, truncation=True, max_length=max_length)["input_ids"]

    if hugging_face(texts) != [e.input_ids for e in encode(tokenizer, texts, max_length=max_length)]:
        raise SystemExit("the Hugging Face call gives other ids than the service's")
    n = args.batch_size
    batches = [texts[i:i + n] for i in range(0, len(texts), n)]
    ways = {
        "service: ltp.core.text.encode, one text a call": lambda: [
            encode(tokenizer, [t], max_length=max_length) for t in texts],
        f"ltp.core.text.encode, {n} texts a call": lambda: [
            encode(tokenizer, b, max_length=max_length) for b in batches],
        "Hugging Face tokenizer call, one text a call": lambda: [hugging_face([t]) for t in texts],
        f"Hugging Face tokenizer call, {n} texts a call": lambda: [hugging_face(b) for b in batches],
    }
    ms: dict[str, list[float]] = {way: [] for way in ways}
    for run in ways.values():
        run()  # warm-up
    for _ in range(args.rounds):  # the ways take turns, so drift hits them alike
        for way, run in ways.items():
            start = time.process_time()
            run()
            ms[way].append((time.process_time() - start) / len(texts) * 1e3)
    for way, times in ms.items():
        print(json.dumps({"way": way, "texts": len(texts), "max_length": max_length,
                          "cpu_ms_per_text": round(statistics.median(times), 4),
                          "range": [round(min(times), 4), round(max(times), 4)]}), flush=True)

if __name__ == "__main__":
    main()
