"""What the scenarios write for people: markdown tables and PNG charts, from their results
(no server). Each chart function saves its PNG and returns the matplotlib figure, so what it
drew can be read back."""

from __future__ import annotations

import csv
from pathlib import Path

from loadtest.results import LoadResult, Spread, cells, mean_of, ratio
from loadtest.traffic import Run


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 110):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)  # out of pyplot's registry; the figure keeps what it drew
    return fig


# --- a Locust run and the comparison of runs ---------------------------------------------

def load_report(results: list[LoadResult], title: str) -> str:
    """A row per run: requests, req/s, latency, failures, and the service's pruning figures."""
    lines = [f"# {title}", "",
             "| target | users | requests | req/s | p50 ms | p95 ms | p99 ms | failures "
             "| mean kept tokens | mean input tokens | FLOPs saved |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.target} | {r.users} | {r.requests} | {r.requests_per_s:.1f} | "
                     f"{r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.p99_ms:.0f} | {r.failures} | "
                     f"{_fmt(r.mean_kept_tokens, '.1f')} | {_fmt(r.mean_input_tokens, '.1f')} | "
                     f"{_fmt(r.flops_saved, '.1%')} |")
    return "\n".join(lines)


def plot_run(history_csv: Path, kept: list[tuple[float, float]], out: Path, title: str) -> dict:
    """``throughput_latency.png`` from Locust's aggregated history (requests/s, p50/p95/p99
    over time) and, where the service reported them, ``kept_tokens.png``: sequences per
    bucket of kept tokens. The figures by file name."""
    plt = _pyplot()
    with open(history_csv) as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    t0 = int(rows[0]["Timestamp"]) if rows else 0
    t = [int(r["Timestamp"]) - t0 for r in rows]

    def column(name: str) -> list[float]:
        return [float(r[name]) if r[name] not in ("N/A", "") else float("nan") for r in rows]

    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a.plot(t, column("Requests/s"), label="requests/s")
    a.set_ylabel("requests/s")
    for q in ("50%", "95%", "99%"):
        b.plot(t, column(q), label=f"p{q.rstrip('%')}")
    b.set_ylabel("latency (ms)")
    b.set_xlabel("seconds")
    b.legend()
    a.set_title(title)
    figures = {"throughput_latency.png": _save(fig, out / "throughput_latency.png")}
    if kept:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        labels = [("inf" if bound == float("inf") else f"{bound:g}") for bound, _ in kept]
        ax.bar(range(len(kept)), [n for _, n in kept], tick_label=labels)
        ax.set_xlabel("kept tokens after the last pruning layer (bucket upper bound)")
        ax.set_ylabel("sequences")
        figures["kept_tokens.png"] = _save(fig, out / "kept_tokens.png")
    return figures


def summary_table(results: list[LoadResult]) -> list[str]:
    """A row per (target, users): req/s and p99 with their spread, the rest as means over
    the runs (requests and failures summed)."""
    lines = ["| target | users | runs | requests | req/s | p50 ms | p95 ms | p99 ms | failures "
             "| mean kept tokens | mean input tokens | FLOPs saved |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (users, target), runs in cells(results).items():
        lines.append(
            f"| {target} | {users} | {len(runs)} | {sum(r.requests for r in runs)} | "
            f"{Spread.of(runs, 'requests_per_s').text('.1f')} | {_fmt(mean_of(runs, 'p50_ms'))} | "
            f"{_fmt(mean_of(runs, 'p95_ms'))} | {Spread.of(runs, 'p99_ms').text('.0f')} | "
            f"{sum(r.failures for r in runs)} | {_fmt(mean_of(runs, 'mean_kept_tokens'), '.1f')} | "
            f"{_fmt(mean_of(runs, 'mean_input_tokens'), '.1f')} | "
            f"{_fmt(mean_of(runs, 'flops_saved'), '.1%')} |")
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


def plot_comparison(results: list[LoadResult], path: Path, title: str):
    """Side-by-side req/s and p99 panels: a group of bars per concurrency, a bar per target
    at its mean over the repeats, error bars from its lowest to its highest run, each run a dot."""
    plt = _pyplot()
    grouped = cells(results)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, field, label in ((axes[0], "requests_per_s", "requests/s"),
                             (axes[1], "p99_ms", "p99 latency (ms)")):
        _panel(ax, grouped, field, label)
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def _panel(ax, grouped, field: str, label: str) -> None:
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


# --- the scenarios that start their own service ------------------------------------------

def _flags(result: dict) -> str:
    return " ".join(result["serve_args"]) or "(defaults)"


def overload_report(result: dict) -> str:
    a, r = result["accepted_ms"], result["refused_ms"]
    return "\n".join([
        f"# Overload: {result['clients']} clients, {result['texts_per_request']} text(s) of about "
        f"100 words a request, {result['duration_s']} s", "",
        f"Model `{result['model']}`, service flags `{_flags(result)}`; "
        "clients wait the Retry-After they are given after a 429.", "",
        "| statuses | accepted req/s | sequences/s | accepted p50 / p95 / p99 / max ms "
        "| refused p50 / p99 ms | 5xx | no answer | max RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result['statuses']} | {result['accepted_per_s']:.1f} | "
        f"{result['sequences_per_s']:.1f} | {_fmt(a['p50'])} / {_fmt(a['p95'])} / "
        f"{_fmt(a['p99'])} / {_fmt(a['max'])} | {_fmt(r['p50'])} / {_fmt(r['p99'])} | "
        f"{result['server_errors']} | {result['no_answer']} | {result['rss_mib_max']:.0f} |", "",
        *_opening_lines(result.get("refused_after_opening_ms")),
        *_probe_lines(result.get("probe"))])


def burst_report(result: dict) -> str:
    lines = [f"# Bursts: {result['clients']} clients at once, one request each, "
             f"{result['rounds']} rounds", "",
             f"Model `{result['model']}`, service flags `{_flags(result)}`; each client opens "
             "its connection and sends one text of about 100 words at the same moment, the "
             "server idle before each burst. The bare app refuses everything on the same "
             "server at the same priority; nginx (where installed) refuses everything from C, "
             "also at that priority: the clients' own share of every figure. "
             f"CPU: {result.get('cpu', '?')}.", "",
             "| target | accepted a burst | refused a burst | refused p50 / p99 / max ms "
             "(all bursts) | a burst's p99 ms: median (min-max) | 5xx | no answer |",
             "|---|---|---|---|---|---|---|"]
    def ms(x: float | None) -> str:
        return _fmt(x, ".1f")

    for name, t in result["targets"].items():
        r, per = t["refused_ms"], t["round_p99_ms"]
        spread = f"{ms(per['median'])} ({ms(per['min'])}-{ms(per['max'])})" if per else "-"
        lines.append(f"| {name} | {t['accepted_per_round']:g} | {t['refused_per_round']:g} | "
                     f"{ms(r['p50'])} / {ms(r['p99'])} / {ms(r['max'])} | {spread} | "
                     f"{t['server_errors']} | {t['no_answer']} |")
    return "\n".join([*lines, ""])


def _opening_lines(later: dict | None) -> list[str]:
    """Refusals after the opening second, when every client connects and sends at once
    (runs recorded before it have none)."""
    if not later:
        return []
    return ["Refused after the first second (all clients open their connections and send at "
            f"once in it): p50 / p99 / max {_fmt(later['p50'])} / {_fmt(later['p99'])} / "
            f"{_fmt(later['max'])} ms.", ""]


def _probe_lines(probe: dict | None) -> list[str]:
    """The light probe's figures beside the crowd's (runs recorded before it have none)."""
    if not probe:
        return []
    a, r = probe["accepted_ms"], probe["refused_ms"]
    return ["A light probe beside them (its own process, one request every 50 ms over one "
            "keep-alive connection): what a client that is not itself overloaded sees.", "",
            "| probe statuses | accepted p50 / p99 ms | refused p50 / p99 / max ms |",
            "|---|---|---|",
            f"| {probe['statuses']} | {_fmt(a['p50'])} / {_fmt(a['p99'])} | "
            f"{_fmt(r['p50'])} / {_fmt(r['p99'])} / {_fmt(r['max'])} |", ""]


def soak_report(result: dict) -> str:
    return "\n".join([
        f"# Soak: {result['clients']} clients of mixed traffic for {result['duration_s']} s", "",
        f"Model `{result['model']}`, service flags `{_flags(result)}`; 80% single texts, 20% "
        f"lists of 4 ({result['dataset']} test split); RSS every {result['rss_every_s']} s.", "",
        "| RSS at start | after 1 min | at end | max | growth after 1 min: trend / end point "
        "| requests | statuses |", "|---|---|---|---|---|---|---|",
        f"| {result['rss_mib_at_start']:.0f} MiB | {result['rss_mib_after_first_minute']:.0f} MiB | "
        f"{result['rss_mib_at_end']:.0f} MiB | {result['rss_mib_max']:.0f} MiB | "
        f"{result['trend_growth_after_first_minute']:+.1%} / "
        f"{result['growth_after_first_minute']:+.1%} | {result['requests']} | "
        f"{result['statuses']} |", "", "Trend: a least-squares line through the samples after "
        "the first minute, its rise to the end over its value at one minute (single samples "
        "swing with the batches in flight).", "", "![RSS over time](rss.png)", ""])


def plot_rss(run: Run, path: Path, title: str):
    """Resident memory of the service over the run."""
    fig, ax = _pyplot().subplots(figsize=(8, 3.5))
    ax.plot([t for t, _ in run.rss], [r for _, r in run.rss], marker=".")
    ax.set_xlabel("seconds")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    return _save(fig, path)


def drain_report(result: dict) -> str:
    return "\n".join([
        f"# Drain: SIGTERM after {result['sigterm_after_s']} s of {result['clients']} clients", "",
        "| before SIGTERM | after SIGTERM (0: connection refused or closed) | exit code |",
        "|---|---|---|",
        f"| {result['answered_before_sigterm']} | {result['after_sigterm']} | "
        f"{result['exit_code']} |", ""])


def bad_input_report(result: dict) -> str:
    bad = result["bad"]
    lines = [f"# Bad input: {len(bad)} kinds of bad request, {result['duration_s']} s, beside "
             f"{result['clients']} good clients", "",
             f"Model `{result['model']}`, service flags `{_flags(result)}`. Good clients: "
             f"{result['good']} (lost: {result['good_lost']}; accepted p99 "
             f"{_fmt(result['good_p99_ms'])} ms). Tracebacks in the service log: "
             f"{result['tracebacks_in_log']}.", "",
             "| bad request | route | expected | answers |", "|---|---|---|---|"]
    lines += [f"| {name} | `{case['path']}` | {case['expected']} | {case['answers']} |"
              for name, case in bad.items()]
    return "\n".join(lines) + "\n"


# --- served against offline ----------------------------------------------------------

def _spread(values: list[float | None], spec: str, *, within: bool = False) -> str:
    """Values over the repeats; ``within``: ratios taken within each run, as mean (range)."""
    known = tuple(v for v in values if v is not None)
    if not known:
        return "-"
    return Spread(known).range_text(spec) if within else Spread(known).text(spec)


def served_report(rows: list[dict], args) -> str:
    """A row per (model, precision, setting) over its runs, then LTP over dense per run."""
    cells: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["model"], r["dtype"], r["settings"]), []).append(r)
    lines = [f"# Served against offline: {args.dataset}, {args.clients} clients, one text a "
             f"request, {args.duration} s a cell", "",
             "Offline: the compact forward alone, length-sorted batches of 32, every core, same "
             "texts, model, max length and precision.", ""]
    if args.repeats > 1:
        lines += [f"{args.repeats} runs per cell, one round over all the cells after another: "
                  "served figures are the mean (lowest–highest run) over two runs, the mean ± "
                  "standard deviation over three or more; ratios are taken within a run.", ""]
    lines += ["| model | dtype | settings | offline seq/s | served req/s | served / offline | "
              "p50 ms | p99 ms | statuses | load client / event loop / workers / idle, cores | "
              "worker CPU ms a request (offline ms a sequence) | served / offline at the offline cost |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (model, dtype, settings), runs in cells.items():
        statuses: dict[str, int] = {}
        for r in runs:
            for status, n in r["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        lines.append(f"| {model} | {dtype} | {settings} | {runs[0]['offline_seq_per_s']:.1f} | "
                     f"{_spread([r['served_req_per_s'] for r in runs], '.1f')} | "
                     f"{_spread([r['served_over_offline'] for r in runs], '.2f', within=True)} | "
                     f"{_spread([r['p50_ms'] for r in runs], '.0f')} | "
                     f"{_spread([r['p99_ms'] for r in runs], '.0f')} | {dict(sorted(statuses.items()))} | "
                     f"{' | '.join(_cpu_cells(runs))} |")
    models = args.models.split(",")
    if len(models) == 2:
        lines += ["", *_ltp_over_dense(cells, *models)]
    return "\n".join(lines)


def _cpu_cells(runs: list[dict]) -> tuple[str, str, str]:
    """The load client's, the event loop's, the workers' and the machine's idle cores (idle
    cores beside a busy service: its threads wait on each other, for the GIL); the workers' CPU per
    request against the offline forward's per sequence; and the served / offline ratio the
    workers' cores allow if they computed at the offline forward's CPU cost per sequence
    (their share of the cores the offline forward had to itself): "-" for runs recorded
    without them."""
    if any(r.get("worker_cores") is None for r in runs):
        return "-", "-", "-"
    cores = " / ".join(_spread([r.get(key) for r in runs], ".2f")
                       for key in ("client_cores", "loop_cores", "worker_cores"))
    idle = [r.get("idle_cores") for r in runs]
    cores += " / " + (_spread(idle, ".2f") if None not in idle else "-")
    per_request = (f"{_spread([r['worker_cpu_ms_per_request'] for r in runs], '.1f')} "
                   f"({runs[0]['offline_cpu_ms_per_seq']:.1f})")
    ceiling = _spread([r["worker_cores"] * 1e3 / (r["offline_cpu_ms_per_seq"] * r["offline_seq_per_s"])
                       for r in runs], ".2f", within=True)
    return cores, per_request, ceiling


def _ltp_over_dense(cells: dict[tuple[str, str, str], list[dict]], ltp: str, dense: str) -> list[str]:
    lines = ["| dtype | settings | served LTP / dense | offline LTP / dense |", "|---|---|---|---|"]
    for (model, dtype, settings), runs in cells.items():
        parent = {r["repeat"]: r for r in cells.get((dense, dtype, settings), [])}
        pairs = [(r, parent[r["repeat"]]) for r in runs if r["repeat"] in parent]
        if model != ltp or not pairs:
            continue
        served = [a["served_req_per_s"] / b["served_req_per_s"] for a, b in pairs
                  if b["served_req_per_s"]]
        offline = pairs[0][0]["offline_seq_per_s"] / pairs[0][1]["offline_seq_per_s"]
        lines.append(f"| {dtype} | {settings} | {_spread(served, '.2f', within=True)} | {offline:.2f} |")
    return lines


def overhead_report(result: dict) -> str:
    load = result["load"]
    return "\n".join([
        f"# Overhead of one request: `{result['model']}`, {result['dataset']} texts", "",
        f"Service flags `{_flags(result)}`; {result['requests_one_at_a_time']} requests one at a "
        f"time, then {load['clients']} clients for {load['duration_s']} s ({load['statuses']}, "
        f"{load['accepted_per_s']:.1f} accepted req/s). CPU: {result['cpu']}, "
        f"{result['cores']} cores.", "",
        "| end to end p50 ms | over the model's batch time: p50 / p90 ms | RSS idle MiB "
        "| RSS after the load MiB |", "|---|---|---|---|",
        f"| {result['idle_total_ms_p50']:.1f} | {result['idle_overhead_ms_p50']:.1f} / "
        f"{result['idle_overhead_ms_p90']:.1f} | {result['rss_mib_idle']:.0f} | "
        f"{result['rss_mib_after_load']:.0f} |", ""])
