"""What tokenising costs a text: the service's way (each request's text through the Hugging
Face tokenizer on the event loop, ``ltp.text.encode``) against batches of the size the
service's queue forms, and against the Rust tokenizer called directly. CPU milliseconds a
text (all threads of this process), median and range of the rounds.

    python scripts/tokenize_cost.py models/reviews-minilm-ltp --dataset amazon-food

Batching would move tokenising into the inference workers, which are what limits the
service's throughput; it pays only if a text costs less CPU in a batch.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

from ltp.artifact import load_artifact
from ltp.data import load_dataset
from ltp.text import encode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8, help="texts a batch (the service's mean)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    artifact = load_artifact(args.model)
    tokenizer, max_length = artifact.tokenizer, artifact.meta.max_length
    texts = [e.text for e in load_dataset(args.dataset).test][: args.examples]
    rust = copy.deepcopy(tokenizer.backend_tokenizer)  # the same Rust tokenizer, called directly
    rust.enable_truncation(max_length)
    rust.no_padding()
    reference = encode(tokenizer, texts, max_length=max_length)
    if [e.ids for e in rust.encode_batch(texts)] != [e.input_ids for e in reference]:
        raise SystemExit("the direct Rust tokenizer gives other ids than the service's")
    n = args.batch_size
    batches = [texts[i:i + n] for i in range(0, len(texts), n)]
    ways = {
        "service: ltp.text.encode, one text a call": lambda: [
            encode(tokenizer, [t], max_length=max_length) for t in texts],
        f"ltp.text.encode, {n} texts a call": lambda: [
            encode(tokenizer, b, max_length=max_length) for b in batches],
        "Rust tokenizer, one text a call": lambda: [rust.encode(t).ids for t in texts],
        f"Rust tokenizer, {n} texts a call": lambda: [
            [e.ids for e in rust.encode_batch(b)] for b in batches],
    }
    for way, run in ways.items():
        run()  # warm-up
        ms = []
        for _ in range(args.rounds):
            start = time.process_time()
            run()
            ms.append((time.process_time() - start) / len(texts) * 1e3)
        print(json.dumps({"way": way, "texts": len(texts), "max_length": max_length,
                          "cpu_ms_per_text": round(statistics.median(ms), 4),
                          "range": [round(min(ms), 4), round(max(ms), 4)]}), flush=True)


if __name__ == "__main__":
    main()
