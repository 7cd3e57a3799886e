"""The load comparison's summary: each (users, target) cell over its repeated runs, the LTP
ratios taken within each repeat, and one chart of the whole comparison.

Pure functions of the runs' ``LoadResult`` objects (no server), so they are unit-tested.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from loadtest.results import LoadResult, Spread

Cells = dict[tuple[int, str], list[LoadResult]]  # (users, target) -> its runs, in repeat order


def cells(results: list[LoadResult]) -> Cells:
    """The runs of each (users, target), by users and then in the order targets were run."""
    order = {t: i for i, t in enumerate(dict.fromkeys(r.target for r in results))}
    grouped: Cells = {}
    for r in sorted(results, key=lambda r: (r.users, order[r.target], r.repeat)):
        grouped.setdefault((r.users, r.target), []).append(r)
    return grouped


def ratio(results: list[LoadResult], users: int, num: str, den: str, field: str) -> Spread | None:
    """``field`` of target ``num`` over that of ``den``, within each repeat that ran both, so
    drift between repeats cancels; None where no repeat has both (or a zero)."""
    top = {r.repeat: getattr(r, field) for r in results if r.users == users and r.target == num}
    bottom = {r.repeat: getattr(r, field) for r in results if r.users == users and r.target == den}
    values = tuple(a / bottom[k] for k, a in top.items() if a and bottom.get(k))
    return Spread(values) if values else None


def _mean(runs: list[LoadResult], field: str) -> float | None:
    values = [getattr(r, field) for r in runs if getattr(r, field) is not None]
    return statistics.fmean(values) if values else None


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def summary_table(results: list[LoadResult]) -> list[str]:
    """A row per (target, users): req/s and p99 with their spread, the rest as means over
    the runs (requests and failures summed)."""
    lines = ["| target | users | runs | requests | req/s | p50 ms | p95 ms | p99 ms | failures "
             "| mean kept tokens | mean input tokens | FLOPs saved |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (users, target), runs in cells(results).items():
        lines.append(
            f"| {target} | {users} | {len(runs)} | {sum(r.requests for r in runs)} | "
            f"{Spread.of(runs, 'requests_per_s').text('.1f')} | {_fmt(_mean(runs, 'p50_ms'), '.0f')} | "
            f"{_fmt(_mean(runs, 'p95_ms'), '.0f')} | {Spread.of(runs, 'p99_ms').text('.0f')} | "
            f"{sum(r.failures for r in runs)} | {_fmt(_mean(runs, 'mean_kept_tokens'), '.1f')} | "
            f"{_fmt(_mean(runs, 'mean_input_tokens'), '.1f')} | "
            f"{_fmt(_mean(runs, 'flops_saved'), '.1%')} |")
    return lines


def ratio_table(results: list[LoadResult], ltp_models: list[str], dense_model: str) -> list[str]:
    """A row per (users, LTP model): its req/s over the dense parent's and the naive
    pipeline's, its p99 over the dense parent's."""
    lines = ["| users | LTP model | LTP / dense req/s | LTP / naive req/s | LTP p99 / dense p99 |",
             "|---|---|---|---|---|"]
    dense, naive = f"dense ({dense_model})", "naive pipeline (pipeline)"
    present = {(r.users, r.target) for r in results}
    for users in sorted({r.users for r in results}):
        for model in ltp_models:
            ltp = f"ltp ({model})"
            if (users, ltp) not in present:
                continue
            figures = [ratio(results, users, ltp, dense, "requests_per_s"),
                       ratio(results, users, ltp, naive, "requests_per_s"),
                       ratio(results, users, ltp, dense, "p99_ms")]
            lines.append(f"| {users} | {model} | "
                         + " | ".join(s.range_text(".2f") if s else "-" for s in figures) + " |")
    return lines


def compare_report(results: list[LoadResult], args) -> str:
    """The comparison's report.md: the setup, a row per cell, the ratios, the chart."""
    repeats = len({r.repeat for r in results})
    setup = (f"{args.duration} s per run, think time {args.think} s, traffic from the "
             f"{args.dataset} test split (20% list requests of 4). req/s counts answered "
             f"requests; refusals (429, after which a client waits its Retry-After) are failures.")
    if repeats > 1:
        setup += (f" {repeats} runs per cell, interleaved across targets: req/s and p99 are the "
                  "mean (lowest–highest run) over two runs, the mean ± standard deviation over "
                  "three or more; each ratio is taken within a run, then given as mean (range).")
    return "\n".join([f"# LTP vs dense vs naive pipeline on {args.dataset}", "",
                      *summary_table(results), "", setup, "",
                      *ratio_table(results, args.ltp_model.split(","), args.dense_model), "",
                      "![req/s and p99 latency per concurrency](comparison.png)"])


def plot_comparison(results: list[LoadResult], path: Path, title: str) -> None:
    """Side-by-side req/s and p99 panels: a group of bars per concurrency, a bar per target
    at its mean over the repeats, error bars from its lowest to its highest run, each run a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = cells(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, field, label in ((axes[0], "requests_per_s", "requests/s"),
                             (axes[1], "p99_ms", "p99 latency (ms)")):
        _panel(ax, grouped, field, label)
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax, grouped: Cells, field: str, label: str) -> None:
    users = sorted({u for u, _ in grouped})
    targets = list(dict.fromkeys(t for _, t in grouped))
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        shift = (i - (len(targets) - 1) / 2) * width
        xs = [j + shift for j, u in enumerate(users) if (u, target) in grouped]
        spreads = [Spread.of(grouped[u, target], field) for u in users if (u, target) in grouped]
        errors = [[s.mean - s.low for s in spreads], [s.high - s.mean for s in spreads]]
        ax.bar(xs, [s.mean for s in spreads], width, yerr=errors, capsize=3, color=f"C{i}",
               alpha=0.85, label=target)
        for x, s in zip(xs, spreads, strict=True):
            ax.scatter([x] * len(s.values), s.values, s=9, color="black", zorder=3)
    ax.set_xticks(range(len(users)), [str(u) for u in users])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel(label)
    values = [v for runs in grouped.values() for v in Spread.of(runs, field).values]
    if min(values) > 0 and max(values) / min(values) > 10:  # 1 user next to 32 on one axis
        ax.set_yscale("log")
        ax.set_ylabel(f"{label}, log scale")
