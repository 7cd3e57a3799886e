"""What each ``ltp`` subcommand does: thin wrappers over the library.

Each command imports the library modules it needs inside its function, so that building
the parser (and ``ltp serve``, ``ltp --version``, ``ltp --help``) loads none of the training
stack (torch, pandas, the trainer). Each returns the dict that ``ltp.cli.output`` prints.
"""

from __future__ import annotations

import argparse

from ltp.cli.output import show_progress


class CommandFailed(Exception):
    """A command that ran to the end but failed: its result is printed, then it exits ``code``."""

    def __init__(self, result: dict, code: int, message: str) -> None:
        super().__init__(message)
        self.result, self.code = result, code


def cmd_convert(args: argparse.Namespace) -> dict:
    import torch

    from ltp.core.artifact import from_classifier, save_artifact
    from ltp.core.config import PruningConfig
    from ltp.core.heads import Head
    from ltp.data.datasets import DataError, load_dataset

    labels = args.labels.split(",") if args.labels else None
    if labels is None and args.dataset:
        labels = load_dataset(args.dataset).labels
    torch.manual_seed(args.seed)
    head = Head(args.problem_type) if args.problem_type else None
    artifact = from_classifier(args.source, labels=labels, max_length=args.max_length, head=head)
    artifact.model.set_pruning(PruningConfig(
        num_layers=artifact.model.encoder.num_layers,
        normalizer=args.normalizer or args.max_length,
        final_threshold=args.final_threshold,
        temperature=args.temperature,
    ))
    if args.target_keep is not None:
        from ltp.data.encoding import encode_split
        from ltp.train.calibrate import calibrate_ramp, kept_fraction

        if not args.dataset:
            raise DataError("--target-keep needs --dataset to calibrate on")
        inputs = encode_split(artifact.tokenizer, args.dataset, "dev",
                              args.max_length)[0][: args.calib_examples]
        calibrate_ramp(artifact, inputs, args.target_keep)
        artifact.meta.eval["calibration"] = {
            "dataset": args.dataset, "split": "dev", "examples": len(inputs),
            "target_kept_fraction": args.target_keep,
            "kept_fraction": kept_fraction(artifact, inputs),
        }
    out = save_artifact(artifact, args.out)
    return {"artifact": str(out), **artifact.meta.pruning.to_dict()}


def cmd_bench(args: argparse.Namespace) -> dict:
    import torch

    from ltp.bench.offline import BenchConfig, agreement, run_bench
    from ltp.core.artifact import load_artifact
    from ltp.core.machine import device_name, tune_allocator
    from ltp.data.encoding import encode_split

    tuned = tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    artifact = load_artifact(args.model, device=args.device, dtype=args.dtype, engine=args.engine)
    cfg = BenchConfig(
        batch_size=args.batch_size, max_length=args.max_length, min_tokens=args.min_tokens,
        max_examples=args.max_examples, rounds=args.rounds, order=args.order,
    )
    encoded, labels = encode_split(artifact.tokenizer, args.dataset, args.split, args.max_length)
    result = run_bench(artifact, encoded, cfg, progress=show_progress())
    reference = None  # keep decisions and labels are compared with the eager fp32 CPU forward
    if (args.dtype, args.engine, artifact.device.type) != ("fp32", "eager", "cpu"):
        reference = load_artifact(args.model, device="cpu", dtype="fp32")
    result |= agreement(artifact, reference, encoded, labels, cfg)
    if args.profile:
        from ltp.bench.profiling import profile_batches

        result["profile"] = profile_batches(artifact, encoded, cfg)
    return result | {
        "dataset": args.dataset, "split": args.split, "max_length": args.max_length,
        "min_tokens": args.min_tokens, "device": str(artifact.device),
        "device_name": device_name(artifact.device), "dtype": args.dtype,
        **artifact.model.engine.describe(),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "allocator_tuned": tuned,
    }


def cmd_quantize(args: argparse.Namespace) -> dict:
    from ltp.core.artifact import load_artifact
    from ltp.core.quant import save_int8

    artifact = load_artifact(args.model)  # fp32 weights, quantised once here
    return {"artifact": args.model, "int8_weights": str(save_int8(artifact.model, args.model))}


def cmd_precisions(args: argparse.Namespace) -> dict:
    from ltp.data.datasets import load_dataset
    from ltp.eval.precisions import record_precisions

    examples = load_dataset(args.dataset).split(args.split)
    chosen = [p for p in args.precisions.split(",") if p] if args.precisions else None
    table = record_precisions(args.model, examples, chosen)
    return {"artifact": args.model, "split": args.split, "rows": [
        {"precision": name, **row} for name, row in table.items()]}


def cmd_bench_runtimes(args: argparse.Namespace) -> dict:
    import torch

    from ltp.bench.runtimes import RuntimeBenchConfig, run_runtimes

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = RuntimeBenchConfig(
        batch_size=args.batch_size, max_length=args.max_length, max_examples=args.max_examples,
        timed_examples=args.timed_examples, latency_examples=args.latency_examples,
        rounds=args.rounds,
        runtimes=[r for r in args.runtimes.split(",") if r],
    )
    return run_runtimes(args.model, args.dense_model, args.dataset, args.split, cfg, args.out,
                        progress=show_progress())


def cmd_finetune(args: argparse.Namespace) -> dict:
    from ltp.core.artifact import save_artifact
    from ltp.data.datasets import load_dataset
    from ltp.train.stages import FinetuneConfig, finetune_model

    cfg = FinetuneConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                         max_length=args.max_length, seed=args.seed)
    artifact = finetune_model(args.base, load_dataset(args.dataset), cfg)
    save_artifact(artifact, args.out)
    return {"artifact": args.out, **artifact.meta.eval["dense"]["test"]}


def cmd_prune(args: argparse.Namespace) -> dict:
    from ltp.core.artifact import save_artifact
    from ltp.data.datasets import load_dataset
    from ltp.train.stages import prune_model

    cfg = _prune_config(args, target_flops=args.target_flops)
    artifact = prune_model(args.model, load_dataset(args.dataset), cfg)
    save_artifact(artifact, args.out)
    return {"artifact": args.out, **artifact.meta.eval["ltp"]["test"]}


def _prune_config(args: argparse.Namespace, **extra):
    """A PruneConfig from the options ``ltp.cli.parser.add_prune_options`` declares."""
    from ltp.train.stages import PruneConfig

    return PruneConfig(
        lam=args.lam, soft_epochs=args.soft_epochs, hard_epochs=args.hard_epochs,
        soft_lr=args.soft_lr, hard_lr=args.hard_lr, threshold_lr=args.threshold_lr,
        temperature=args.temperature, regularizer=args.regularizer, distill=args.distill,
        distill_hidden=args.distill_hidden, first_keep=args.first_keep,
        soft_style=args.soft_style, score_norm=args.score_norm, fuse=args.fuse,
        ranking=args.ranking,
        ranking_top=args.ranking_top, batch_size=args.batch_size, seed=args.seed, **extra,
    )


def cmd_eval(args: argparse.Namespace) -> dict:
    from ltp.core.artifact import load_artifact
    from ltp.data.datasets import load_dataset
    from ltp.eval.evaluate import evaluate

    artifact = load_artifact(args.model, device=args.device)
    examples = load_dataset(args.dataset).split(args.split)
    mode = "dense" if args.no_prune else "compact"
    return evaluate(artifact, examples, mode=mode, truncate_to=args.truncate, progress=show_progress())


def cmd_build(args: argparse.Namespace) -> dict:
    from ltp.train.card import summary
    from ltp.train.recipes import RecipeError, WeakModelError, build

    if (args.recipe is None) == (args.data is None):
        raise RecipeError("give a recipe (ltp build models/NAME.yaml) or --data PATH --name NAME")
    try:
        if args.data is not None:
            return _build_from_data(args)
        artifact = build(args.recipe, force=args.force, allow_weak=args.allow_weak)
    except WeakModelError as exc:  # the model was written; the figures say why it is weak
        raise CommandFailed(
            {"artifact": str(exc.artifact.path or ""), **summary(exc.artifact)}, 3,
            "the dense model is weak (use --allow-weak to go on):\n  " + "\n  ".join(exc.reasons),
        ) from exc
    return {"artifact": str(artifact.path or ""), **summary(artifact), "eval": artifact.meta.eval}


def _build_from_data(args: argparse.Namespace) -> dict:
    from ltp.data.datasets import Columns
    from ltp.train.recipes import RecipeError
    from ltp.train.userbuild import build_from_data

    if not args.name:
        raise RecipeError("--data needs --name (the model's name under the models folder)")
    target = args.target_flops if args.target_flops == "auto" else float(args.target_flops)
    labels = tuple(c.strip() for c in args.label_columns.split(",")) if args.label_columns else None
    columns = Columns(args.text_column, args.label_column, args.pair_column, labels,
                      args.label_delimiter)
    return build_from_data(
        args.data, args.name, columns, base=args.base, target_flops=target,
        max_length=args.max_length, models_dir=args.models_dir, allow_weak=args.allow_weak,
        force=args.force, seed=args.seed, steps=args.steps, problem_type=args.problem_type)


def cmd_sweep(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from ltp.bench.sweep import SweepConfig, run_sweep
    from ltp.bench.sweep_table import markdown_table, plot
    from ltp.data.datasets import load_dataset

    data = load_dataset(args.dataset)
    floats = lambda text: [float(x) for x in text.split(",") if x]  # noqa: E731
    cfg = SweepConfig(
        lambdas=floats(args.lambdas), topk_targets=floats(args.topk),
        truncate_lengths=[int(x) for x in floats(args.truncate)],
        prune=_prune_config(args),
        topk_finetune=not args.no_topk_finetune,
        artifacts=[Path(a) for a in args.artifacts.split(",") if a],
        flops_targets=floats(args.targets),
        seeds=[int(x) for x in floats(args.seeds)] or None,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_sweep(Path(args.model), data, cfg, csv_path=out / "sweep.csv", progress=show_progress())
    plot(rows, out / "sweep.png", f"{args.dataset}: accuracy vs FLOPs")
    (out / "sweep.md").write_text(markdown_table(rows) + "\n")
    return {"csv": str(out / "sweep.csv"), "plot": str(out / "sweep.png"), "rows": rows}


def cmd_info(args: argparse.Namespace) -> dict:
    from ltp.core.artifact import load_artifact

    artifact = load_artifact(args.model)
    return artifact.meta.to_dict()


def cmd_headline(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from ltp.bench.headline import current, render, rewrite

    readme = Path(args.readme)
    table, text = render(readme.parent), readme.read_text()
    if args.write:
        readme.write_text(rewrite(text, table))
    elif args.check and current(text) != table:
        raise CommandFailed({"readme": str(readme), "expected": table, "found": current(text)}, 1,
                            f"{readme}'s headline table differs from the reports: "
                            "`ltp headline --write` rewrites it")
    return {"readme": str(readme), "table": table, "written": args.write}
