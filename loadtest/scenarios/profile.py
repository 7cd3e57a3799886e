"""``profile``: where the service's time goes under load: py-spy on `ltp serve` while
closed-loop clients send one text a request, then the share of samples per thread and each
thread's top frames.

    python -m loadtest profile --model reviews-minilm-ltp --clients 32 \\
        --out reports/served-reviews-minilm/profile
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from loadtest.results import summarize
from loadtest.scenarios.common import finish, service_arguments, start_service
from loadtest.traffic import bodies_for, drive, texts_of


def top_frames(raw: Path, top: int) -> list[str]:
    """Per thread: samples, and the leaf frames' shares (idle samples included)."""
    per_thread: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        per_thread[frames[0]][frames[-1].split(" (")[0]] += int(count)
    lines = []
    for thread, leaves in per_thread.items():
        total = sum(leaves.values())
        lines += [f"## {thread}: {total} samples", "", "| frame | share |", "|---|---|"]
        lines += [f"| `{name}` | {100 * n / total:.1f}% |" for name, n in leaves.most_common(top)]
        lines.append("")
    return lines


def profile(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    bodies = bodies_for(texts_of(args.dataset), 1, count=512)
    with start_service(args, out) as server:
        drive(server.url, bodies[:64], args.clients, 3)  # warm, untimed
        record = subprocess.Popen(
            [spy, "record", "--pid", str(server.pid), "--duration", str(args.duration), "--rate",
             "100", "--format", "raw", "--threads", "--idle", "-o", str(out / "pyspy.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = drive(server.url, bodies, args.clients, args.duration)
        record.wait()
    figures = summarize(run, args.duration, 1)
    flags = " ".join(args.serve_args) or "(defaults)"
    lines = [f"# py-spy of `ltp serve` ({args.model} {flags}), {args.clients} clients, one "
             f"{args.dataset} text a request, {args.duration} s", "",
             f"{figures['accepted_per_s']:.1f} accepted req/s under the profiler (100 samples a "
             f"second, idle samples included: `Runner.run` is the event loop waiting, "
             f"`Condition.wait` a worker waiting for a batch).", "",
             *top_frames(out / "pyspy.txt", args.top)]
    (out / "profile.md").write_text("\n".join(lines) + "\n")
    return figures


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=32, duration=20)
    p.add_argument("--top", type=int, default=12, help="frames per thread")


def main(args: argparse.Namespace) -> int:
    return finish(profile(args), Path(args.out), report="profile.md")
