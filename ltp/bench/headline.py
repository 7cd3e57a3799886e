"""The README's table of headline figures, read from the reports that measured them.

Each row names a report's JSON and how to read its figure; ``render`` writes the table,
``rewrite`` puts it between the README's ``<!-- headline:begin -->`` and ``<!-- headline:end -->``
markers. A figure is typed nowhere else: rerun the report, then ``ltp headline --write``.
A report that is missing shows as such, so the table never carries a figure nobody measured.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ltp.bench.sweep_table import settings

BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
WITHIN = 0.01  # "within 1.0 pt": an LTP row counts only within this of dense fp32 accuracy


@dataclass(frozen=True)
class Row:
    what: str
    source: str  # the JSON (or CSV) the figure is read from, relative to the repository
    link: str  # the page a reader opens
    figure: Callable[[object], str]
    # a glob of further runs of the same report: their bold ratio is shown beside the figure
    repeats: str | None = None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _span(values: list[float], fmt: str = ".2f") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}-{hi:{fmt}}"


def _ltp_within(result: dict) -> tuple[dict, list[dict]]:
    """Dense torch fp32's row and the LTP rows within ``WITHIN`` of its accuracy."""
    rows = result["rows"]
    dense = next(r for r in rows if r["runtime"] == "torch-fp32")
    return dense, [r for r in rows if r["runtime"].startswith("ltp-")
                   and r["accuracy"] >= dense["accuracy"] - WITHIN - 1e-9]


def batch32(result: dict) -> str:
    dense, ltp = _ltp_within(result)
    if not ltp:
        return "no LTP runtime within 1.0 pt of dense fp32"
    best = max(ltp, key=lambda r: r["seq_per_s"])
    return (f"{best['runtime']} {best['seq_per_s']:.1f} seq/s, **{best['x_best_dense']:.2f}x** "
            f"{result['best_dense']} dense; accuracy {_pct(best['accuracy'])} "
            f"(dense fp32 {_pct(dense['accuracy'])}) at {result['relative_flops']:.2f} relative FLOPs")


def batch1(result: dict) -> str:
    _, ltp = _ltp_within(result)
    if not ltp:
        return "no LTP runtime within 1.0 pt of dense fp32"
    best = min(ltp, key=lambda r: r["p50_latency_ms_b1"])
    fastest = next(r for r in result["rows"] if r["runtime"] == result["fastest_dense_b1"])
    return (f"{best['runtime']} p50 {best['p50_latency_ms_b1']:.1f} ms, "
            f"**{best['b1_vs_fastest_dense']:.2f}x** {fastest['runtime']} dense "
            f"({fastest['p50_latency_ms_b1']:.1f} ms)")


def _runs(results: list[dict], kind: str, users: int) -> dict[int, dict]:
    return {r["repeat"]: r for r in results if r["target"].startswith(kind) and r["users"] == users}


def service(results: list[dict]) -> str:
    """LTP over dense within each repeat: p50 and p99 at the lowest concurrency, req/s at the
    highest."""
    users = sorted({r["users"] for r in results})
    parts = []
    for u, field, label in ((users[0], "p50_ms", "p50"), (users[0], "p99_ms", "p99"),
                            (users[-1], "requests_per_s", "req/s")):
        ltp, dense = _runs(results, "ltp", u), _runs(results, "dense", u)
        ratios = [ltp[k][field] / dense[k][field] for k in ltp if k in dense and dense[k][field]]
        if ratios:
            parts.append(f"{u} client{'s' * (u > 1)}: {label} **{_span(ratios)}x** dense's")
    return "; ".join(parts) + f" ({len(ratios)} run{'s' * (len(ratios) > 1)} a cell)"


def overload(result: dict) -> str:
    refused = result["refused_ms"]["p99"]
    later = (result.get("refused_after_opening_ms") or {}).get("p99")
    after = f" ({later:.0f} ms after the first second)" if later is not None else ""
    return (f"{result['clients']} clients: {result['statuses'].get('200', 0):,} answered, "
            f"{result['statuses'].get('429', 0):,} refused; accepted p99 "
            f"{result['accepted_ms']['p99'] / 1000:.2f} s, refused p99 "
            f"**{refused:.0f} ms**{after}; {result['server_errors']} 5xx")


def soak(result: dict) -> str:
    return (f"{result['requests']:,} requests over {result['duration_s'] / 60:.0f} min, "
            f"{result['server_errors']} 5xx; resident memory trend after the first minute "
            f"{100 * result['trend_growth_after_first_minute']:+.1f}%")


def same_engine(result: dict) -> str:
    """LTP against its dense parent on the same engine and precision: the speedup at batch
    32 and batch 1, each with its efficiency (speedup x the two forwards' FLOPs ratio)."""
    rows = [r for r in result["rows"] if r.get("same_engine")]
    if not rows:
        return "not in this run (`dense-ort-*` rows missing)"
    return "; ".join(
        f"{r['runtime']}: batch 32 **{e['speedup']:.2f}x** (efficiency {e['efficiency']:.2f}), "
        f"batch 1 {e['speedup_b1']:.2f}x ({e['efficiency_b1']:.2f})"
        for r in rows for e in [r["same_engine"]])


def bad_input(result: dict) -> str:
    answered = sum(sum(k["answers"].values()) for k in result["bad"].values())
    right = sum(k["answers"].get(str(k["expected"]), 0) for k in result["bad"].values())
    return (f"{len(result['bad'])} kinds: {right:,} of {answered:,} got their 4xx and the error "
            f"body; {result['good_lost']} of {sum(result['good'].values()):,} good requests lost; "
            f"{result['server_errors']} 5xx")


def sweep(rows: list[dict]) -> str:
    """LTP's best accuracy at or under 0.5 relative FLOPs against the best top-k and
    truncation at or under the same FLOPs; each setting at its median over the seeds."""
    points = settings(rows)

    def best(method: str, flops: float) -> dict | None:
        fits = [p for p in points if p["method"].lower() == method and p["relative_flops"] <= flops]
        return max(fits, key=lambda p: p["accuracy"], default=None)

    ltp = best("ltp", 0.5)
    if ltp is None:
        return "no LTP point at or under 0.5 relative FLOPs"
    flops = ltp["relative_flops"]
    others = [(m, best(m, flops)) for m in ("top-k", "top-k + fine-tune", "truncation")]
    return (f"LTP {_pct(ltp['accuracy'])}{_seeds(ltp)} at {flops:.2f} relative FLOPs; at or under the "
            "same FLOPs " + ", ".join(f"{m} {_pct(r['accuracy'])}" for m, r in others if r))


def _seeds(point: dict) -> str:
    """How many seeds a sweep setting's median is over, where more than one."""
    return f" (median of {point['runs']} seeds)" if point["runs"] > 1 else ""


def same_schedule(rows: list[dict]) -> str:
    """Each LTP FLOPs target against dense and against top-k on the very keep schedule LTP's
    hard stage started from, after the same fine-tune: medians over the seeds."""
    points = {(p["method"], p["setting"]): p for p in settings(rows)}
    dense = points[("dense", "no pruning")]["accuracy"]
    cells = []
    for (method, setting), p in points.items():
        if method != "LTP" or not setting.startswith("FLOPs target "):
            continue
        target = setting.split()[2].rstrip(",")
        cell = (f"LTP **{_pct(p['accuracy'])}**{_seeds(p)} at {p['relative_flops']:.2f} relative "
                f"FLOPs, dense {_pct(dense)}")
        tuned = points.get(("top-k + fine-tune", f"LTP's schedule for FLOPs {target}"))
        if tuned is not None:
            cell += f"; top-k on the same schedule, fine-tuned alike, {_pct(tuned['accuracy'])}"
        cells.append(cell)
    return "; ".join(cells) or "no LTP run at a FLOPs target"


def small_data(result: dict) -> str:
    """A few hundred rows of a built-in set through ``ltp build --data``: the medians over
    the seeds of dense, TF-IDF and LTP, and LTP's FLOPs."""
    builds = result["builds"]

    def median(key: str, field: str) -> float:
        return statistics.median(b[key][field] for b in builds)

    return (f"{result['rows']} rows of {result['dataset']}, {len(builds)} seed"
            f"{'s' * (len(builds) > 1)} (median): dense **{_pct(median('dense', 'accuracy'))}** "
            f"against TF-IDF {_pct(median('baseline_tfidf', 'accuracy'))} (macro-F1 "
            f"{_pct(median('dense', 'macro_f1'))} against "
            f"{_pct(median('baseline_tfidf', 'macro_f1'))}); LTP "
            f"{_pct(median('ltp', 'accuracy'))} at {median('ltp', 'relative_flops'):.2f} "
            "relative FLOPs")


ROWS = (
    Row("batch 32, against the best dense runtime (seq/s, whole test split's accuracy)",
        "reports/runtimes-amazon-food.json", "reports/runtimes-amazon-food.md", batch32,
        "reports/runtimes-amazon-food-run*.json"),
    Row("batch 1, against the fastest dense runtime (p50 over 100 inputs)",
        "reports/runtimes-amazon-food.json", "reports/runtimes-amazon-food.md", batch1,
        "reports/runtimes-amazon-food-run*.json"),
    Row("same engine: LTP against its dense parent on ONNX Runtime (efficiency 1.0: every FLOP "
        "removed is time saved)", "reports/runtimes-amazon-food.json",
        "reports/runtimes-amazon-food.md", same_engine, "reports/runtimes-amazon-food-run*.json"),
    Row("through the service, one text a request, LTP against its dense parent",
        "reports/compare-amazon-food/results.json", "reports/compare-amazon-food/report.md",
        service),
    Row("overload, 200 clients for 30 s", "reports/overload/reviews-single-text/result.json",
        "reports/overload/reviews-single-text/report.md", overload,
        "reports/overload/reviews-single-text-run*/result.json"),
    Row("soak, 8 clients of mixed traffic", "reports/soak/reviews-fp32/result.json",
        "reports/soak/reviews-fp32/report.md", soak),
    Row("malformed and over-limit requests beside 8 good clients",
        "reports/bad-input/result.json", "reports/bad-input/report.md", bad_input),
    Row("accuracy against FLOPs: LTP, top-k, truncation", "reports/sweep-amazon-food/sweep.csv",
        "reports/sweep-amazon-food/sweep.md", sweep),
    Row("half the FLOPs on rt-polarity: LTP against top-k on its own keep schedule",
        "reports/sweep-rt-polarity/sweep.csv", "reports/sweep-rt-polarity/sweep.md", same_schedule),
    Row("your own small data set: a sample through `ltp build --data` at its defaults",
        "reports/small-data/rt-polarity-600/result.json",
        "reports/small-data/rt-polarity-600/report.md", small_data),
)


def _bold(figure: str) -> str:
    """A figure's first bold part (its headline ratio)."""
    return figure.split("**")[1] if figure.count("**") >= 2 else figure


def _read(path: Path):
    if path.suffix == ".csv":
        with path.open() as f:
            return list(csv.DictReader(f))
    return json.loads(path.read_text())


def _cpu(data) -> str:
    """The CPU a report names (``device_name`` or ``cpu``; a list of runs: theirs)."""
    found = data if isinstance(data, dict) else (data[0] if data and isinstance(data[0], dict) else {})
    return found.get("device_name") or found.get("cpu") or "not recorded"


def _label(link: str) -> str:
    """A report page's name, or its folder's where the page is the folder's report."""
    path = Path(link)
    return f"{path.parent.name}/" if path.name in ("report.md", "sweep.md") else path.name


def render(root: str | Path = ".", rows: tuple[Row, ...] = ROWS) -> str:
    """The table, every figure read from its report under ``root``."""
    root = Path(root)
    lines = ["| what | figure | CPU | report |", "|---|---|---|---|"]
    for row in rows:
        path = root / row.source
        if not path.exists():
            lines.append(f"| {row.what} | not measured yet (`{row.source}` is missing) | - | - |")
            continue
        data = _read(path)
        cpu = "-" if path.suffix == ".csv" else _cpu(data)
        figure = row.figure(data)
        others = [_bold(row.figure(_read(p))) for p in sorted(root.glob(row.repeats or "-"))]
        if others:
            figure += f"; {'other runs' if len(others) > 1 else 'another run'}: {', '.join(others)}"
        lines.append(f"| {row.what} | {figure} | {cpu} | [{_label(row.link)}]({row.link}) |")
    return "\n".join(lines)


def rewrite(readme: str, table: str) -> str:
    """``readme`` with ``table`` between the markers."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def current(readme: str) -> str:
    """The table between the markers of ``readme``."""
    return readme.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
