"""Which int8 linears move the keep decisions: agreement with the fp32 compact forward and
speed, for int8 in every linear and for the feed-forward kept in fp32 where its output still
reaches a keep decision (every layer but the last two).

    python scripts/int8_layers.py models/reviews-minilm-ltp --dataset amazon-food
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from ltp.bench.offline import BenchConfig, agreement
from ltp.core.artifact import load_artifact
from ltp.core.machine import tune_allocator
from ltp.core.quant import PARTS, quantize_model
from ltp.data.encoding import encode_split


def plans(layers: int) -> dict:
    early = lambda i: i < layers - 2  # noqa: E731 - its output still reaches a keep decision
    return {
        "every linear": PARTS,
        "fp32 feed-forward output before the last two layers":
            lambda i: tuple(p for p in PARTS if not (early(i) and p == "ffn_out")),
        "fp32 feed-forward before the last two layers":
            lambda i: tuple(p for p in PARTS if not (early(i) and p.startswith("ffn"))),
    }


def best_seconds(model, batches, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds + 1):  # the first round warms up
        start = time.perf_counter()
        for b in batches:
            model.run(b, mode="compact")
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--examples", type=int, default=256,
                        help="inputs timed; agreement is measured on the whole test split")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_allocator()
    reference = load_artifact(args.model)
    encoded, labels = encode_split(reference.tokenizer, args.dataset, "test", reference.meta.max_length)
    cfg = BenchConfig(batch_size=32, max_examples=len(encoded), min_tokens=0)
    inputs = encoded[: args.examples]
    for name, which in plans(reference.model.encoder.num_layers).items():
        int8 = load_artifact(args.model)
        quantize_model(int8.model, which=which)
        agree = agreement(int8, reference, encoded, labels, cfg)
        with torch.inference_mode():
            t_int8 = best_seconds(int8.model, [b for _, b in int8.batches(inputs, 32)], args.rounds)
            t_fp32 = best_seconds(reference.model, [b for _, b in reference.batches(inputs, 32)],
                                  args.rounds)
        print(json.dumps({"int8 linears": name, "examples": agree["accuracy_examples"],
                          "accuracy": agree["accuracy"], "keep_agreement": agree["keep_agreement_vs_fp32"],
                          "label_agreement": agree["label_agreement_vs_fp32"],
                          "max_logit_diff": agree["max_logit_diff_vs_fp32"],
                          "int8_over_fp32_compact": min(t_fp32) / min(t_int8),
                          "seconds": {"int8": t_int8, "fp32": t_fp32}}), flush=True)


if __name__ == "__main__":
    main()
