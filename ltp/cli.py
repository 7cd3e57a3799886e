"""The ``ltp`` command line: thin wrappers over the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys

import torch

from ltp.artifact import (
    ArtifactError,
    from_classifier,
    load_artifact,
    save_artifact,
)
from ltp.config import LAYOUTS, PruningConfig
from ltp.data import DataError, load_dataset
from ltp.recipes import RecipeError, WeakModelError

log = logging.getLogger("ltp")


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        sys.stdout.write(f"{key:>28}: {value}\n")


def _encode_split(artifact, dataset: str, split: str, max_length: int):
    from ltp.text import encode

    examples = load_dataset(dataset).split(split)
    pairs = [e.text_pair for e in examples]
    return encode(
        artifact.tokenizer,
        [e.text for e in examples],
        pairs if any(p is not None for p in pairs) else None,
        max_length=max_length,
    )


def cmd_convert(args: argparse.Namespace) -> dict:
    labels = args.labels.split(",") if args.labels else None
    if labels is None and args.dataset:
        labels = load_dataset(args.dataset).labels
    torch.manual_seed(args.seed)
    artifact = from_classifier(args.source, labels=labels, max_length=args.max_length)
    artifact.model.set_pruning(PruningConfig(
        num_layers=artifact.model.encoder.num_layers,
        normalizer=args.normalizer or args.max_length,
        final_threshold=args.final_threshold,
        temperature=args.temperature,
    ))
    if args.target_keep is not None:
        from ltp.calibrate import calibrate_ramp, kept_fraction

        if not args.dataset:
            raise DataError("--target-keep needs --dataset to calibrate on")
        inputs = _encode_split(artifact, args.dataset, "dev", args.max_length)[: args.calib_examples]
        calibrate_ramp(artifact, inputs, args.target_keep)
        artifact.meta.eval["calibration"] = {
            "dataset": args.dataset, "split": "dev", "examples": len(inputs),
            "target_kept_fraction": args.target_keep,
            "kept_fraction": kept_fraction(artifact, inputs),
        }
    out = save_artifact(artifact, args.out)
    return {"artifact": str(out), **artifact.meta.pruning.to_dict()}


def cmd_bench(args: argparse.Namespace) -> dict:
    from ltp.bench import BenchConfig, agreement, device_name, load_split, run_bench
    from ltp.runtime import tune_allocator

    tuned = tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    artifact = load_artifact(args.model, device=args.device, dtype=args.dtype)
    cfg = BenchConfig(
        batch_size=args.batch_size, max_length=args.max_length, min_tokens=args.min_tokens,
        max_examples=args.max_examples, rounds=args.rounds, layout=args.layout,
    )
    encoded, labels = load_split(artifact, args.dataset, args.split, args.max_length)
    result = run_bench(artifact, encoded, cfg)
    reference = None
    if args.dtype != "fp32":
        reference = load_artifact(args.model, device=args.device, dtype="fp32")
    result |= agreement(artifact, reference, encoded, labels, cfg)
    if args.profile:
        from ltp.profiling import profile_batches

        result["profile"] = profile_batches(artifact, encoded, cfg)
    return result | {
        "dataset": args.dataset, "split": args.split, "max_length": args.max_length,
        "min_tokens": args.min_tokens, "device": str(artifact.device),
        "device_name": device_name(artifact.device), "dtype": args.dtype,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "allocator_tuned": tuned,
    }


def cmd_quantize(args: argparse.Namespace) -> dict:
    from ltp.quant import save_int8

    artifact = load_artifact(args.model)  # fp32 weights, quantised once here
    return {"artifact": args.model, "int8_weights": str(save_int8(artifact.model, args.model))}


def cmd_bench_runtimes(args: argparse.Namespace) -> dict:
    from ltp.runtimes import RuntimeBenchConfig, run_runtimes

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RuntimeBenchConfig(
        batch_size=args.batch_size, max_length=args.max_length, max_examples=args.max_examples,
        latency_examples=args.latency_examples, rounds=args.rounds,
        runtimes=[r for r in args.runtimes.split(",") if r],
    )
    return run_runtimes(args.model, args.dense_model, args.dataset, args.split, cfg, args.out)


def cmd_finetune(args: argparse.Namespace) -> dict:
    from ltp.pipeline import FinetuneConfig, finetune_model

    cfg = FinetuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         max_length=args.max_length, seed=args.seed)
    artifact = finetune_model(args.base, load_dataset(args.dataset), cfg)
    save_artifact(artifact, args.out)
    return {"artifact": args.out, **artifact.meta.eval["dense"]["test"]}


def cmd_prune(args: argparse.Namespace) -> dict:
    from ltp.pipeline import prune_model

    cfg = _prune_config(args, target_flops=args.target_flops)
    artifact = prune_model(args.model, load_dataset(args.dataset), cfg)
    save_artifact(artifact, args.out)
    return {"artifact": args.out, **artifact.meta.eval["ltp"]["test"]}


def _prune_config(args: argparse.Namespace, **extra):
    """A PruneConfig from the options ``_add_prune_options`` declares."""
    from ltp.pipeline import PruneConfig

    return PruneConfig(
        lam=args.lam, soft_epochs=args.soft_epochs, hard_epochs=args.hard_epochs,
        soft_lr=args.soft_lr, hard_lr=args.hard_lr, threshold_lr=args.threshold_lr,
        temperature=args.temperature, regularizer=args.regularizer, distill=args.distill,
        soft_style=args.soft_style, score_norm=args.score_norm,
        batch_size=args.batch_size, seed=args.seed, **extra,
    )


def cmd_eval(args: argparse.Namespace) -> dict:
    from ltp.evaluate import evaluate

    artifact = load_artifact(args.model, device=args.device)
    examples = load_dataset(args.dataset).split(args.split)
    mode = "dense" if args.no_prune else "compact"
    return evaluate(artifact, examples, mode=mode, truncate_to=args.truncate)


def cmd_build(args: argparse.Namespace) -> dict:
    from ltp.recipes import build, summary

    if (args.recipe is None) == (args.data is None):
        raise RecipeError("give a recipe (ltp build models/NAME.yaml) or --data PATH --name NAME")
    if args.data is not None:
        from ltp.data import Columns
        from ltp.userbuild import build_from_data

        if not args.name:
            raise RecipeError("--data needs --name (the model's name under the models folder)")
        target = args.target_flops if args.target_flops == "auto" else float(args.target_flops)
        return build_from_data(
            args.data, args.name, Columns(args.text_column, args.label_column, args.pair_column),
            base=args.base, target_flops=target, max_length=args.max_length,
            models_dir=args.models_dir, allow_weak=args.allow_weak, force=args.force, seed=args.seed,
            steps=args.steps)
    artifact = build(args.recipe, force=args.force, allow_weak=args.allow_weak)
    return {"artifact": str(artifact.path or ""), **summary(artifact), "eval": artifact.meta.eval}


def cmd_sweep(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from ltp.sweep import SweepConfig, markdown_table, plot, run_sweep

    data = load_dataset(args.dataset)
    floats = lambda text: [float(x) for x in text.split(",") if x]  # noqa: E731
    cfg = SweepConfig(
        lambdas=floats(args.lambdas), topk_targets=floats(args.topk),
        truncate_lengths=[int(x) for x in floats(args.truncate)],
        prune=_prune_config(args),
        topk_finetune=not args.no_topk_finetune,
        artifacts=[Path(a) for a in args.artifacts.split(",") if a],
        flops_targets=floats(args.targets),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_sweep(Path(args.model), data, cfg, csv_path=out / "sweep.csv")
    plot(rows, out / "sweep.png", f"{args.dataset}: accuracy vs FLOPs")
    (out / "sweep.md").write_text(markdown_table(rows) + "\n")
    return {"csv": str(out / "sweep.csv"), "plot": str(out / "sweep.png"), "rows": rows}


def cmd_info(args: argparse.Namespace) -> dict:
    artifact = load_artifact(args.model)
    return artifact.meta.to_dict()


def _add_prune_options(p: argparse.ArgumentParser) -> None:
    """The two LTP stages' settings, shared by ``prune`` and ``sweep``."""
    p.add_argument("--lambda", dest="lam", type=float, default=0.05,
                   help="pruning strength (with a FLOPs target: weight of the penalty above it)")
    p.add_argument("--temperature", type=float, default=None,
                   help="soft-mask temperature (default 1e-3; with a FLOPs target, a tenth "
                        "of the mean calibrated threshold)")
    p.add_argument("--threshold-lr", type=float, default=1e-3)
    p.add_argument("--soft-epochs", type=float, default=1.0)
    p.add_argument("--hard-epochs", type=float, default=1.0)
    p.add_argument("--soft-lr", type=float, default=2e-5)
    p.add_argument("--hard-lr", type=float, default=2e-5)
    p.add_argument("--regularizer", choices=["flops", "uniform"], default="flops")
    p.add_argument("--soft-style", choices=["cumulative", "paper"], default="cumulative")
    p.add_argument("--distill", type=float, default=0.0, help="weight of distillation from the parent")
    p.add_argument("--score-norm", choices=["fixed", "median"], default="fixed",
                   help="importance score scale: fixed 1/N (the paper's) or per input by the "
                        "median token (short inputs are not pruned harder than long ones)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltp", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="wrap a HF classifier folder into an LTP artifact")
    p.add_argument("source", help="model folder, or a named base model (minilm)")
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--labels", help="comma-separated label names (new head on a bare encoder)")
    p.add_argument("--dataset", help="data set whose labels to use / to calibrate on")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--normalizer", type=int, help="score normaliser N (default: max length)")
    p.add_argument("--final-threshold", type=float, default=0.0, help="threshold ramp end value")
    p.add_argument("--temperature", type=float, default=1e-3)
    p.add_argument("--target-keep", type=float, help="calibrate the ramp to keep this fraction")
    p.add_argument("--calib-examples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="seed for a newly initialised head")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("bench", help="dense vs compact forward throughput and latency")
    p.add_argument("model", help="LTP artifact folder")
    p.add_argument("--dataset", required=True, help="built-in data set name or a data file")
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16", "int8"],
                   help="precision of both forwards (int8: int8 encoder linears, CPU)")
    p.add_argument("--layout", default="packed", choices=list(LAYOUTS))
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--min-tokens", type=int, default=0, help="only inputs at least this long")
    p.add_argument("--max-examples", type=int, default=512)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--profile", action="store_true",
                   help="also profile the compact forward: matmul share, top operators, per layer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench-runtimes", help="dense torch / ONNX Runtime against LTP compact "
                       "in each precision, on the same inputs; writes a report with a chart")
    p.add_argument("model", help="LTP artifact folder")
    p.add_argument("--dense-model", help="dense parent artifact (default: the LTP artifact's "
                   "own weights, unpruned)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--max-examples", type=int, default=0, help="0: the whole split")
    p.add_argument("--latency-examples", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runtimes", default="", help="comma-separated subset (default: all)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", default="reports", help="folder for runtimes-<dataset>.md and .png")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_runtimes)

    p = sub.add_parser("quantize", help="save an artifact's int8 weights (int8.safetensors) so "
                       "that --dtype int8 loads them instead of quantising at every start")
    p.add_argument("model", help="LTP artifact folder (written in place)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("finetune", help="fine-tune a base encoder into a dense classifier")
    p.add_argument("--base", required=True, help="model folder, or minilm")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("prune", help="LTP: soft stage (learn thresholds), then hard stage")
    p.add_argument("--model", required=True, help="fine-tuned classifier artifact folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--target-flops", type=float,
                   help="start from thresholds calibrated to this relative FLOPs; the soft "
                        "stage then only penalises FLOPs above it (--soft-epochs 0 skips it)")
    _add_prune_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("eval", help="accuracy, relative FLOPs and kept tokens on a split")
    p.add_argument("model")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--no-prune", action="store_true", help="dense forward")
    p.add_argument("--truncate", type=int, help="truncation baseline: cut inputs to this length")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("build", help="build a models/NAME.yaml recipe end to end, with a card; "
                       "or, with --data, a dense and an LTP model from your own labelled file")
    p.add_argument("recipe", nargs="?", help="recipe file (models/NAME.yaml)")
    p.add_argument("--data", help="CSV, TSV or JSONL file, or a folder with train / dev / test files")
    p.add_argument("--name", help="with --data: the LTP model's name (its dense parent: NAME-dense)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--pair-column", help="second text of a pair (entailment, question + answer)")
    p.add_argument("--base", default="minilm", help="minilm, or a BERT/RoBERTa/DistilBERT folder")
    p.add_argument("--target-flops", default="auto",
                   help="relative FLOPs budget in (0, 1), or auto: the smallest of a short sweep "
                        "on dev within 1 point of dense")
    p.add_argument("--max-length", type=int, help="default: 95th percentile of the token lengths")
    p.add_argument("--models-dir", default="models", help="where recipes and models are written")
    p.add_argument("--steps", type=int, help="dense fine-tune optimiser steps (default: from the data "
                   "size, at least 300); the LTP stages take at most as many")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-weak", action="store_true",
                   help="exit 0 even when the dense model does not clearly beat the baselines")
    p.add_argument("--force", action="store_true", help="rebuild even if the artifact exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("sweep", help="LTP lambdas vs top-k and truncation: CSV and plot")
    p.add_argument("--model", required=True, help="dense parent artifact")
    p.add_argument("--dataset", required=True)
    p.add_argument("--out", required=True, help="folder for sweep.csv, sweep.png, sweep.md")
    p.add_argument("--lambdas", default="0.01,0.03,0.06", help="LTP runs to train ('' for none)")
    p.add_argument("--targets", default="", help="LTP runs with these relative-FLOPs targets, "
                   "each with top-k on the same keep schedule")
    p.add_argument("--topk", default="0.5,0.3,0.2,0.1", help="cascade keep-ratio targets")
    p.add_argument("--truncate", default="48,32,24,16", help="truncation lengths")
    p.add_argument("--no-topk-finetune", action="store_true")
    p.add_argument("--artifacts", default="", help="LTP artifacts already trained from the "
                   "same parent, evaluated as more LTP points (comma-separated folders)")
    _add_prune_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("info", help="print an artifact's ltp.json")
    p.add_argument("model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Run a subcommand; ``parser`` lets the service add its own (``ltp serve``)."""
    args = (parser or build_parser()).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        result = args.func(args)
    except WeakModelError as exc:  # the model was written; the figures say why it is weak
        from ltp.recipes import summary

        _emit({"artifact": str(exc.artifact.path or ""), **summary(exc.artifact)},
              getattr(args, "json", False))
        log.error("the dense model is weak (use --allow-weak to go on):\n  %s", "\n  ".join(exc.reasons))
        return 3
    except (ArtifactError, DataError, RecipeError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    _emit(result, getattr(args, "json", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
