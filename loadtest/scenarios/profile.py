"""Where the service's time goes under load: py-spy on `ltp serve` while 32 clients send one
text a request, then the share of samples per thread and each thread's top frames.

    python scripts/profile_service.py --model reviews-minilm-ltp --out reports/served-reviews-minilm/profile
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from loadtest.processes import stop
from loadtest.scenarios import start_service, summarize, texts_of
from loadtest.traffic import bodies_for, drive


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", default="models")
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", default="amazon-food")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--serve-flags", default="", help="extra `ltp serve` flags, e.g. '--dtype fp32'")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    bodies = bodies_for(texts_of(args.dataset), 1, count=512)
    proc, url = start_service(out, args.models_dir, args.model, args.serve_flags.split())
    try:
        drive(url, bodies[:64], args.clients, 3)  # warm, untimed
        record = subprocess.Popen(
            [spy, "record", "--pid", str(proc.pid), "--duration", str(args.duration), "--rate", "100",
             "--format", "raw", "--threads", "--idle", "-o", str(out / "pyspy.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run = drive(url, bodies, args.clients, args.duration)
        record.wait()
    finally:
        stop(proc)
    figures = summarize(run, args.duration, 1)
    lines = [f"# py-spy of `ltp serve` ({args.model} {args.serve_flags or '(defaults)'}), "
             f"{args.clients} clients, one {args.dataset} text a request, {args.duration} s", "",
             f"{figures['accepted_per_s']:.1f} accepted req/s under the profiler (100 samples a "
             f"second, idle samples included: `Runner.run` is the event loop waiting, "
             f"`Condition.wait` a worker waiting for a batch).", "", *top_frames(out / "pyspy.txt", args.top)]
    (out / "profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
