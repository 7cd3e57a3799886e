"""The ``ltp`` command line: build, evaluate and benchmark LTP models.

This module only declares the arguments; ``ltp.cli.commands`` runs them, each command importing
its library modules itself, so that building the parser costs no torch, pandas or training
code. The service adds ``ltp serve`` to this parser from ``app.cli`` (the console script's
entry point): ``app`` depends on ``ltp``, never the other way round.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from ltp.cli import commands
from ltp.cli.output import emit
from ltp.core.config import BATCH_ORDERS, ENGINES, PRECISIONS, PROBLEM_TYPES

log = logging.getLogger("ltp")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: X)`` to a flag's help, except where there is nothing to show: no
    default (None), an off switch (False), an empty string, or a help text that says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, "", argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def package_version() -> str:
    """The installed ``ltp-serve`` distribution's version."""
    try:
        return version("ltp-serve")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from ltp import __version__

        return __version__


def add_prune_options(p: argparse.ArgumentParser) -> None:
    """The two LTP stages' settings, shared by ``prune`` and ``sweep``."""
    p.add_argument("--lambda", dest="lam", type=float, default=0.05,
                   help="pruning strength (with a FLOPs target: weight of the penalty above it)")
    p.add_argument("--temperature", type=float, default=None,
                   help="soft-mask temperature (default 1e-3; with a FLOPs target, a tenth "
                        "of the mean calibrated threshold)")
    p.add_argument("--threshold-lr", type=float, default=1e-3, help="learning rate of the thresholds")
    p.add_argument("--soft-epochs", type=float, default=1.0, help="epochs of the soft stage")
    p.add_argument("--hard-epochs", type=float, default=1.0, help="epochs of the hard stage")
    p.add_argument("--soft-lr", type=float, default=2e-5, help="learning rate of the soft stage")
    p.add_argument("--hard-lr", type=float, default=2e-5, help="learning rate of the hard stage")
    p.add_argument("--regularizer", choices=["flops", "uniform"], default="flops",
                   help="what the pruning penalty counts: FLOPs, or kept tokens alike in each layer")
    p.add_argument("--soft-style", choices=["cumulative", "paper"], default="cumulative",
                   help="soft masks multiply across layers, or each layer's masks its output")
    p.add_argument("--first-keep", type=float, default=1.0,
                   help="with a FLOPs target: the fraction of tokens layer 0 keeps in the "
                        "calibrated starting schedule (1: layer 0 never prunes)")
    p.add_argument("--distill", type=float, default=0.0, help="weight of distillation from the parent")
    p.add_argument("--distill-hidden", type=float, default=0.0,
                   help="hard stage: weight of the parent's classifier-token hidden states, "
                        "every layer (0: off)")
    p.add_argument("--ranking", type=float, default=0.0,
                   help="weight of ranking distillation in the soft stage (0: off)")
    p.add_argument("--ranking-top", type=int, default=20,
                   help="the parent's best tokens of each input the ranking loss orders")
    p.add_argument("--score-norm", choices=["fixed", "median"], default="fixed",
                   help="importance score scale: fixed 1/N (the paper's) or per input by the "
                        "median token (short inputs are not pruned harder than long ones)")
    p.add_argument("--fuse", action="store_true",
                   help="the tokens a layer drops leave as one fused token, their mean "
                        "weighted by score (hard stage and inference)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    p.set_defaults(func=func)
    return p


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON (default: tables)")


def _add_dataset(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="built-in data set name or a data file")


def _add_inputs(p: argparse.ArgumentParser) -> None:
    """The inputs a benchmark runs: a data set's split, in batches."""
    _add_dataset(p)
    p.add_argument("--split", default="test", help="data set split")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per batch")


def build_parser() -> argparse.ArgumentParser:
    """The ``ltp`` parser with the library's subcommands (the service adds ``serve``)."""
    parser = argparse.ArgumentParser(
        prog="ltp", description="Build, evaluate, benchmark and serve Learned Token Pruning models.",
        formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(sub)
    _add_bench(sub)
    _add_bench_runtimes(sub)
    _add_quantize(sub)
    _add_precisions(sub)
    _add_finetune(sub)
    _add_prune(sub)
    _add_eval(sub)
    _add_build(sub)
    _add_sweep(sub)
    _add_info(sub)
    _add_headline(sub)
    return parser


def _add_convert(sub) -> None:
    p = _command(sub, "convert", commands.cmd_convert, "wrap a HF classifier folder into an LTP artifact")
    p.add_argument("source", help="model folder, or a named base model (minilm)")
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--labels", help="comma-separated label names (new head on a bare encoder)")
    p.add_argument("--dataset", help="data set whose labels to use / to calibrate on")
    p.add_argument("--max-length", type=int, default=128, help="tokens per input")
    p.add_argument("--normalizer", type=int, help="score normaliser N (default: max length)")
    p.add_argument("--final-threshold", type=float, default=0.0, help="threshold ramp end value")
    p.add_argument("--temperature", type=float, default=1e-3, help="soft-mask temperature")
    p.add_argument("--target-keep", type=float, help="calibrate the ramp to keep this fraction")
    p.add_argument("--calib-examples", type=int, default=256, help="dev inputs to calibrate on")
    p.add_argument("--seed", type=int, default=0, help="seed for a newly initialised head")
    p.add_argument("--problem-type", choices=PROBLEM_TYPES,
                   help="the head's problem type (default: the checkpoint's config.problem_type; "
                        "unset there: regression for one label, else single-label)")
    _json_flag(p)


def _add_bench(sub) -> None:
    p = _command(sub, "bench", commands.cmd_bench, "dense vs compact forward throughput and latency")
    p.add_argument("model", help="LTP artifact folder")
    _add_inputs(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--dtype", default="fp32", choices=list(PRECISIONS),
                   help="precision of both forwards (int8: int8 encoder linears, CPU)")
    p.add_argument("--engine", default="eager", choices=list(ENGINES),
                   help="how the compact forward executes: eager torch (attention input by "
                        "input), eager with padded attention, or ONNX Runtime")
    p.add_argument("--order", default="length", choices=BATCH_ORDERS,
                   help="batches of similar lengths, or in arrival order (mixed lengths, as a "
                        "service's queue sees them)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per input")
    p.add_argument("--min-tokens", type=int, default=0, help="only inputs at least this long")
    p.add_argument("--max-examples", type=int, default=512, help="inputs to time")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds of each forward")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    p.add_argument("--profile", action="store_true",
                   help="also profile the compact forward: matmul share, top operators, per layer")
    _json_flag(p)


def _add_bench_runtimes(sub) -> None:
    p = _command(sub, "bench-runtimes", commands.cmd_bench_runtimes,
                 "dense torch / ONNX Runtime against LTP compact in each precision, on the same "
                 "inputs; writes a report with a chart")
    p.add_argument("model", help="LTP artifact folder")
    p.add_argument("--dense-model", help="dense parent artifact (default: the LTP artifact's "
                   "own weights, unpruned)")
    _add_inputs(p)
    p.add_argument("--max-length", type=int, default=256, help="tokens per input")
    p.add_argument("--max-examples", type=int, default=0,
                   help="inputs of the accuracy pass (0: the whole split)")
    p.add_argument("--timed-examples", type=int, default=256,
                   help="the first this many inputs are timed in batches (0: all)")
    p.add_argument("--latency-examples", type=int, default=100, help="inputs timed one at a time")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds of each runtime")
    p.add_argument("--runtimes", default="",
                   help="comma-separated subset (default: all, bf16 only where this CPU has it natively)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    p.add_argument("--out", default="reports", help="folder for runtimes-<dataset>.md and .png")
    _json_flag(p)


def _add_quantize(sub) -> None:
    p = _command(sub, "quantize", commands.cmd_quantize,
                 "save an artifact's int8 weights (int8.safetensors) so that --dtype int8 loads "
                 "them instead of quantising at every start")
    p.add_argument("model", help="LTP artifact folder (written in place)")
    _json_flag(p)


def _add_precisions(sub) -> None:
    p = _command(sub, "precisions", commands.cmd_precisions,
                 "measure the compact forward's accuracy in each precision and record it in "
                 "ltp.json (eval.precision), where `ltp serve --dtype auto` reads it; `ltp build` "
                 "does this for LTP recipes")
    p.add_argument("model", help="LTP artifact folder (ltp.json written in place)")
    _add_dataset(p)
    p.add_argument("--split", default="dev", help="split to measure on")
    p.add_argument("--precisions", default="",
                   help="comma-separated (default: those this CPU runs natively; fp32 always)")
    _json_flag(p)


def _add_finetune(sub) -> None:
    p = _command(sub, "finetune", commands.cmd_finetune, "fine-tune a base encoder into a dense classifier")
    p.add_argument("--base", required=True, help="model folder, or minilm")
    _add_dataset(p)
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--max-length", type=int, default=128, help="tokens per input")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    _json_flag(p)


def _add_prune(sub) -> None:
    p = _command(sub, "prune", commands.cmd_prune, "LTP: soft stage (learn thresholds), then hard stage")
    p.add_argument("--model", required=True, help="fine-tuned classifier artifact folder")
    _add_dataset(p)
    p.add_argument("--out", required=True, help="artifact folder to write")
    p.add_argument("--target-flops", type=float,
                   help="start from thresholds calibrated to this relative FLOPs; the soft "
                        "stage then only penalises FLOPs above it (--soft-epochs 0 skips it)")
    add_prune_options(p)
    _json_flag(p)


def _add_eval(sub) -> None:
    p = _command(sub, "eval", commands.cmd_eval, "accuracy, relative FLOPs and kept tokens on a split")
    p.add_argument("model", help="LTP artifact folder")
    _add_dataset(p)
    p.add_argument("--split", default="test", choices=["train", "dev", "test"], help="data set split")
    p.add_argument("--no-prune", action="store_true", help="dense forward")
    p.add_argument("--truncate", type=int, help="truncation baseline: cut inputs to this length")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    _json_flag(p)


def _add_build(sub) -> None:
    p = _command(sub, "build", commands.cmd_build,
                 "build a models/NAME.yaml recipe end to end, with a card; or, with --data, a "
                 "dense and an LTP model from your own labelled file")
    p.add_argument("recipe", nargs="?", help="recipe file (models/NAME.yaml)")
    p.add_argument("--data", help="CSV, TSV or JSONL file, or a folder with train / dev / test files")
    p.add_argument("--name", help="with --data: the LTP model's name (its dense parent: NAME-dense)")
    p.add_argument("--text-column", default="text", help="with --data: column of the text")
    p.add_argument("--label-column", default="label", help="with --data: column of the label")
    p.add_argument("--label-columns", help="multi-label: comma-separated 0/1 columns, one per label")
    p.add_argument("--label-delimiter", help="multi-label: the label column holds several labels "
                   "split by this ('|', ';', ',')")
    p.add_argument("--problem-type", choices=PROBLEM_TYPES,
                   help="default: multi_label_classification with --label-columns or "
                        "--label-delimiter, else single_label_classification; regression reads "
                        "numeric labels")
    p.add_argument("--pair-column", help="second text of a pair (entailment, question + answer)")
    p.add_argument("--base", default="minilm", help="minilm, or a BERT/RoBERTa/DistilBERT folder")
    p.add_argument("--target-flops", default="auto",
                   help="relative FLOPs budget in (0, 1), or auto: the smallest of a short sweep "
                        "on dev within 1 point of dense")
    p.add_argument("--max-length", type=int, help="default: 95th percentile of the token lengths")
    p.add_argument("--models-dir", default="models", help="where recipes and models are written")
    p.add_argument("--steps", type=int, help="dense fine-tune optimiser steps (default: from the data "
                   "size, at least 300); the LTP stages take at most as many")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--allow-weak", action="store_true",
                   help="exit 0 even when the dense model does not clearly beat the baselines")
    p.add_argument("--force", action="store_true", help="rebuild even if the artifact exists")
    _json_flag(p)


def _add_sweep(sub) -> None:
    p = _command(sub, "sweep", commands.cmd_sweep, "LTP lambdas vs top-k and truncation: CSV and plot")
    p.add_argument("--model", required=True, help="dense parent artifact")
    _add_dataset(p)
    p.add_argument("--out", required=True, help="folder for sweep.csv, sweep.png, sweep.md")
    p.add_argument("--lambdas", default="0.01,0.03,0.06", help="LTP runs to train ('' for none)")
    p.add_argument("--targets", default="", help="LTP runs with these relative-FLOPs targets, "
                   "each with top-k on the same keep schedule (default: none)")
    p.add_argument("--topk", default="0.5,0.3,0.2,0.1", help="cascade keep-ratio targets")
    p.add_argument("--truncate", default="48,32,24,16", help="truncation lengths")
    p.add_argument("--no-topk-finetune", action="store_true",
                   help="skip the top-k runs with the hard stage's fine-tune")
    p.add_argument("--artifacts", default="", help="LTP artifacts already trained from the "
                   "same parent, evaluated as more LTP points (comma-separated folders; default: none)")
    p.add_argument("--seeds", default="", help="run every trained row once per seed (comma-"
                   "separated; the table and plot give the median and the spread; default: --seed)")
    add_prune_options(p)
    _json_flag(p)


def _add_info(sub) -> None:
    p = _command(sub, "info", commands.cmd_info, "print an artifact's ltp.json")
    p.add_argument("model", help="LTP artifact folder")
    _json_flag(p)


def _add_headline(sub) -> None:
    p = _command(sub, "headline", commands.cmd_headline,
                 "the README's table of headline figures, read from the reports that measured them")
    p.add_argument("--readme", default="README.md", help="the README whose table is read or written")
    p.add_argument("--write", action="store_true", help="rewrite the README's table in place")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the README's table differs from the reports")


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
    as_json = getattr(args, "json", False)
    try:
        result = args.func(args)
    except commands.CommandFailed as exc:
        emit(exc.result, as_json, title=f"ltp {args.command}")
        log.error("%s", exc)
        return exc.code
    except ValueError as exc:  # ArtifactError, DataError, RecipeError: bad input, said plainly
        log.error("%s", exc)
        return 2
    emit(result, as_json, title=f"ltp {args.command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
