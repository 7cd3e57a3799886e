"""What the scenarios that start their own service share: their options, starting the
service, writing the result and the report, and the exit status."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from loadtest.server import Server, ltp_serve, run_below_clients
from ltp.core.machine import cpu_name


def at_least_one(value: str) -> int:
    if int(value) < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return int(value)


def server_dir_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server-dir", default=None,
                   help="checkout to run the service from (before/after comparisons)")


def service_arguments(p: argparse.ArgumentParser, *, clients: int,
                      duration: int | None = None) -> None:
    """The options of a scenario against one model of its own `ltp serve`."""
    p.add_argument("--models-dir", default="models")
    p.add_argument("--model", default="sentiment-minilm-ltp")
    p.add_argument("--dataset", default="amazon-food", help="texts to send (test split)")
    p.add_argument("--clients", type=int, default=clients)
    if duration is not None:
        p.add_argument("--duration", type=int, default=duration, help="seconds")
    p.add_argument("--out", required=True)
    p.add_argument("--serve-args", default="", type=lambda v: v.split(),
                   help="extra `ltp serve` flags, e.g. '--dtype bf16'")
    server_dir_argument(p)


def start_service(args: argparse.Namespace, out: Path, model: str | None = None,
                  flags: list[str] | None = None) -> Server:
    """`ltp serve` of ``model`` (default ``args.model``) with ``flags`` (default
    ``args.serve_args``), its log in ``out``, running below the clients of this process."""
    server = ltp_serve(out / "service.log", args.models_dir, [model or args.model],
                       flags=args.serve_args if flags is None else flags,
                       server_dir=args.server_dir)
    run_below_clients(server)
    return server


def write(out: Path, result: dict | list, report: str) -> None:
    """``result.json`` (a dict names the CPU it ran on) and ``report.md``."""
    if isinstance(result, dict):
        result = {**result, "cpu": result.get("cpu") or cpu_name()}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(report)


def finish(result: dict, out: Path, report: str = "report.md") -> int:
    """The report on stdout; 1 where the service answered 5xx or a request got an answer it
    should not have, else 0."""
    sys.stdout.write((out / report).read_text())
    return 1 if result.get("server_errors") or result.get("unexpected") else 0
