"""A sweep's rows as the user reads them: the CSV, one line a setting (the median over its
seeds), the table and the plot. No training here, so the README's table reads a sweep
without loading a model."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

FIELDS = ["method", "setting", "seed", "accuracy", "relative_flops", "relative_model_flops",
          "kept_fraction_per_layer", "seed_agreement"]


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def settings(rows: list[dict]) -> list[dict]:
    """One entry per (method, setting), in the order they first appear: the median over its
    rows (its seeds) of accuracy and FLOPs, each seed's accuracy, and how often its seeds
    decide alike (``seed_agreement``, None for one seed or a sweep that did not record it)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["setting"]), []).append(r)
    out = []
    for (method, setting), runs in groups.items():
        acc = [float(r["accuracy"]) for r in runs]
        flops = [float(r["relative_flops"]) for r in runs]
        middle = sorted(range(len(runs)), key=lambda i: acc[i])[(len(runs) - 1) // 2]
        out.append({"method": method, "setting": setting, "runs": len(runs),
                    "accuracy": statistics.median(acc), "accuracies": acc,
                    "seeds": [r.get("seed", "") for r in runs],
                    "relative_flops": statistics.median(flops),
                    "relative_model_flops": statistics.median(
                        float(r["relative_model_flops"]) for r in runs),
                    "kept_fraction_per_layer": runs[middle]["kept_fraction_per_layer"],
                    "seed_agreement": next((float(r["seed_agreement"]) for r in runs
                                            if r.get("seed_agreement") not in (None, "")), None)})
    return out


def plot(rows: list[dict], path: Path, title: str):
    """Accuracy against relative FLOPs, one series per method (each setting's median over
    its seeds, the range of the seeds as an error bar), saved to ``path``; the matplotlib
    figure, so what it drew can be read back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"LTP": "o-", "top-k": "s--", "top-k + fine-tune": "D--", "truncation": "^:",
               "dense": "k*"}
    points = settings(rows)
    for method, style in markers.items():
        mine = sorted((p for p in points if p["method"] == method),
                      key=lambda p: (p["relative_flops"], p["accuracy"]))
        if not mine:
            continue
        line, = ax.plot([p["relative_flops"] for p in mine], [100 * p["accuracy"] for p in mine],
                        style, label=method, markersize=7)
        spread = [p for p in mine if p["runs"] > 1]
        if spread:  # seeds' range: a collection, not a line of the axes
            ax.errorbar([p["relative_flops"] for p in spread],
                        [100 * p["accuracy"] for p in spread],
                        yerr=[[100 * (p["accuracy"] - min(p["accuracies"])) for p in spread],
                              [100 * (max(p["accuracies"]) - p["accuracy"]) for p in spread]],
                        fmt="none", capsize=0, ecolor=line.get_color(), elinewidth=1.5)
    ax.set_xlabel("relative FLOPs (paper formula, vs dense)")
    ax.set_ylabel("test accuracy (%), median over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fig


def markdown_table(rows: list[dict]) -> str:
    """A line per (method, setting): the median over its seeds, and each seed's accuracy
    with their spread where there are several (and the share of test examples on which
    every two seeds decide alike, where recorded)."""
    lines = ["| method | setting | accuracy | relative FLOPs | whole model | kept fraction per layer "
             "| seeds: accuracy (spread) |",
             "|---|---|---|---|---|---|---|"]
    for p in settings(rows):
        seeds = ""
        if p["runs"] > 1:
            each = " / ".join(f"{s}: {100 * a:.1f}" for s, a in zip(p["seeds"], p["accuracies"],
                                                                    strict=True))
            alike = ("" if p["seed_agreement"] is None
                     else f"; decide alike on {100 * p['seed_agreement']:.1f}%")
            seeds = f"{each} ({100 * (max(p['accuracies']) - min(p['accuracies'])):.1f} pt{alike})"
        elif p["seeds"][0] != "":
            seeds = f"{p['seeds'][0]}"
        lines.append(f"| {p['method']} | {p['setting']} | {100 * p['accuracy']:.1f} | "
                     f"{p['relative_flops']:.3f} | {p['relative_model_flops']:.3f} | "
                     f"{p['kept_fraction_per_layer']} | {seeds} |")
    return "\n".join(lines)
