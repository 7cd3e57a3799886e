"""Small data as a new user has it: a stratified sample of a built-in set's training split
(``--rows``, 90% train / 10% dev) written as a folder of CSV files, built with
``ltp build --data`` at its defaults for each seed, and scored on the set's full test
split. Writes ``result.json`` (every build's ``--json``, under ``builds``) and ``report.md`` (majority,
TF-IDF, dense and LTP accuracy and macro-F1 per seed, and the median) under ``--out``.

    python scripts/small_data.py --dataset rt-polarity --rows 600 --seeds 0,1,2 \
        --out reports/small-data/rt-polarity-600
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sklearn.model_selection import train_test_split

from ltp.core.machine import cpu_name
from ltp.data.datasets import load_dataset

ROWS = (("majority class", "baseline_majority"), ("TF-IDF + logistic regression", "baseline_tfidf"),
        ("dense MiniLM", "dense"), ("LTP", "ltp"))


def write_sample(dataset: str, rows: int, folder: Path, seed: int = 0) -> dict[str, int]:
    """``rows`` training examples of ``dataset`` (stratified; a tenth of them as dev) and
    its whole test split, as ``train.csv``, ``dev.csv`` and ``test.csv`` in ``folder``."""
    data = load_dataset(dataset)
    names = data.labels
    labels = [e.label for e in data.train]
    sample, _ = train_test_split(range(len(data.train)), train_size=rows, stratify=labels,
                                 random_state=seed)
    train, dev = train_test_split(sample, test_size=0.1, stratify=[labels[i] for i in sample],
                                  random_state=seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": [data.train[i] for i in train], "dev": [data.train[i] for i in dev],
              "test": list(data.test)}
    for split, examples in splits.items():
        with open(folder / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([e.text, names[e.label]] for e in examples)
    return {split: len(examples) for split, examples in splits.items()}


def build(folder: Path, models: Path, name: str, seed: int, target_flops: str) -> dict:
    """``ltp build --data`` of ``folder`` with ``seed``; its ``--json`` result."""
    command = [sys.executable, "-m", "ltp.cli.parser", "build", "--data", str(folder), "--name",
               name, "--models-dir", str(models), "--seed", str(seed), "--target-flops",
               target_flops, "--allow-weak", "--json"]
    start = time.monotonic()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return {**json.loads(out), "seed": seed, "build_seconds": time.monotonic() - start}


def report(dataset: str, rows: int, sizes: dict[str, int], builds: list[dict],
           target_flops: str = "auto") -> str:
    def cell(key: str, field: str) -> str:
        values = [100 * b[key][field] for b in builds]
        each = " / ".join(f"{v:.1f}" for v in values)
        return each + (f" ({statistics.median(values):.1f})" if len(values) > 1 else "")

    flops = " / ".join(f"{b['ltp']['relative_flops']:.2f}" for b in builds)
    seconds = " / ".join(f"{b['build_seconds']:.0f}" for b in builds)
    lines = [f"# Small data: {rows} rows of {dataset}", "",
             f"`python scripts/small_data.py --dataset {dataset} --rows {rows} --seeds "
             f"{','.join(str(b['seed']) for b in builds)}"
             f"{'' if target_flops == 'auto' else ' --target-flops ' + target_flops}`: a "
             f"stratified sample of the training split ({sizes['train']} train / "
             f"{sizes['dev']} dev) through `ltp build --data` at its defaults"
             f"{'' if target_flops == 'auto' else ', budget ' + target_flops}, scored on the "
             f"whole test split ({sizes['test']}). Seeds "
             f"{', '.join(str(b['seed']) for b in builds)} (median in brackets). CPU: "
             f"{cpu_name()}.", "",
             "| model | test accuracy | macro-F1 |", "|---|---|---|"]
    lines += [f"| {label} | {cell(key, 'accuracy')} | {cell(key, 'macro_f1')} |"
              for label, key in ROWS]
    lines += ["", f"LTP relative FLOPs (paper formula; budget `{target_flops}`): {flops}. "
              "Build seconds "
              f"(dense and LTP): {seconds}.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="rt-polarity")
    p.add_argument("--rows", type=int, default=600)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--target-flops", default="auto", help="passed to ltp build (default: auto)")
    p.add_argument("--out", required=True, help="folder of the report and result")
    p.add_argument("--work", default=None,
                   help="folder of the sample and the models (default: a temporary one)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="ltp-small-data-"))
    sizes = write_sample(args.dataset, args.rows, work / "data")
    builds = []
    for seed in args.seeds.split(","):  # the files are rewritten after each build
        builds.append(build(work / "data", work / "models", f"small-{seed}", int(seed),
                            args.target_flops))
        result = {"dataset": args.dataset, "rows": args.rows, "sizes": sizes,
                  "target_flops": args.target_flops, "cpu": cpu_name(), "builds": builds}
        (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "report.md").write_text(report(args.dataset, args.rows, sizes, builds,
                                              args.target_flops))
    print((out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
