"""What bounds the service's throughput: the same service, clients and texts with the pruned
model, its dense parent and a tiny random model of the same tokenizer (almost no compute:
the service's own ceiling), with 1 to 3 inference workers; per run the answered req/s, the
cores of the event loop and of the workers, their CPU per request, and the machine's idle
cores.

    python scripts/service_ceiling.py --ltp reviews-minilm-ltp --dense reviews-minilm \\
        --dataset amazon-food --flags "--engine ort --dtype int8" \\
        --out reports/service-ceiling-amazon-food

Idle cores beside a service that cannot go faster mean its threads wait on each other: the
event loop and the workers share one interpreter lock, and every hand-over between them
wakes a thread.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from loadtest.scenarios.served import served_cell
from loadtest.traffic import texts_of
from ltp.core.artifact import Artifact, ArtifactMeta, load_artifact, save_artifact
from ltp.core.config import PruningConfig
from ltp.core.machine import cpu_name
from ltp.core.model import LTPModel


def tiny_like(source: Path, out: Path) -> None:
    """A 1-layer, hidden-32 random BERT with ``source``'s tokenizer, labels and max length."""
    real = load_artifact(source)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=real.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=real.meta.max_length + 2,
                     num_labels=len(real.meta.labels))
    pruning = PruningConfig(num_layers=1, normalizer=real.meta.pruning.normalizer)
    model = LTPModel(BertForSequenceClassification(cfg).eval(), pruning)
    save_artifact(Artifact(model, real.tokenizer, ArtifactMeta(
        real.meta.labels, pruning, max_length=real.meta.max_length)), out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models-dir", default="models")
    p.add_argument("--ltp", default="reviews-minilm-ltp")
    p.add_argument("--dense", default="reviews-minilm")
    p.add_argument("--dataset", default="amazon-food")
    p.add_argument("--flags", default="--engine ort --dtype int8")
    p.add_argument("--workers", default="1,2,3", help="worker counts tried with the LTP model")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    flags = args.flags.split()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        for name in (args.ltp, args.dense):
            (models / name).symlink_to(Path(args.models_dir).resolve() / name)
        tiny_like(models / args.ltp, models / "tiny")
        cells = [("tiny", ["--workers", "2"]), (args.dense, ["--workers", "2"])]
        cells += [(args.ltp, ["--workers", w]) for w in args.workers.split(",")]
        ns = argparse.Namespace(models_dir=str(models), server_dir=None, clients=args.clients,
                                duration=args.duration, serve_args=[])
        rows = []
        for repeat in range(1, args.repeats + 1):
            for model, extra in cells:
                s = served_cell(ns, out, model, [*flags, *extra], texts)
                rows.append({"model": model, "flags": " ".join([*flags, *extra]), "repeat": repeat,
                             **{k: s[k] for k in ("accepted_per_s", "loop_cores", "worker_cores",
                                                  "idle_cores", "client_cores",
                                                  "loop_cpu_ms_per_request",
                                                  "worker_cpu_ms_per_request")}})
                print(json.dumps(rows[-1]), flush=True)
    (out / "result.json").write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=2) + "\n")
    lines = [f"# What bounds the service: {args.dataset}, {args.clients} clients, one text a "
             f"request, {args.duration} s a run", "", f"{cpu_name()}; `{args.flags}`; "
             f"{args.repeats} rounds over the rows, one after another (each value: the runs in "
             "order). `tiny` is a 1-layer, hidden-32 random model with the same tokenizer: the "
             "service's own ceiling.", "",
             "| model | flags | answered req/s | event loop / workers / idle, cores | event loop / "
             "workers, CPU ms a request |", "|---|---|---|---|---|"]
    for model, extra in cells:
        runs = [r for r in rows if r["model"] == model and r["flags"] == " ".join([*flags, *extra])]

        def join(key: str, f: str, runs: list[dict] = runs) -> str:
            return ", ".join(format(r[key], f) for r in runs)

        lines.append(f"| {model} | {' '.join(extra)} | {join('accepted_per_s', '.1f')} | "
                     f"{join('loop_cores', '.2f')} / {join('worker_cores', '.2f')} / "
                     f"{join('idle_cores', '.2f')} | {join('loop_cpu_ms_per_request', '.2f')} / "
                     f"{join('worker_cpu_ms_per_request', '.2f')} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
