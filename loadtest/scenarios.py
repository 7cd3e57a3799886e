"""Overload, soak, drain and bad-input runs against a real `ltp serve` process, each with a
report.

    python -m loadtest.run overload --clients 200 --duration 30 --per-request 1 --out reports/overload
    python -m loadtest.run soak --duration 600 --clients 8 --dtype fp32 --out reports/soak/fp32
    python -m loadtest.run drain --clients 32 --out reports/drain
    python -m loadtest.run bad-input --clients 8 --duration 20 --out reports/bad-input
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from loadtest.processes import free_port, stop, wait_http
from loadtest.results import Spread
from loadtest.scrape import engine_figures, scrape
from loadtest.traffic import Run, bodies_for, drive, rss_mib, thread_cpu_seconds
from ltp.data.datasets import load_dataset

REPO = Path(__file__).resolve().parent.parent


def start_service(out: Path, models_dir: str, model: str, extra: list[str],
                  server_dir: str | None = None) -> tuple:
    """`ltp serve` of one model on a free loopback port; ``server_dir``: the checkout to run
    it from (another version of the service, for a before/after comparison)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "app.cli", "serve", "--models-dir", str(Path(models_dir).resolve()),
           "--default-model", model, "--host", "127.0.0.1", "--port", str(port), *extra]
    log = (out / "service.log").open("wb")
    env = os.environ | {"LTP_MODELS": json.dumps([model])}
    proc = subprocess.Popen(cmd, cwd=server_dir or REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    try:
        wait_http(f"{url}/readyz", 300, proc)
    except RuntimeError:
        proc.kill()
        raise
    _prioritise_clients()
    return proc, url


def _prioritise_clients() -> None:
    """The clients (this process) get the CPU before the service on the shared cores, so
    their own scheduling delay does not show as the service's latency: on a real
    deployment the clients run on other machines. Needs root; a no-op otherwise."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except PermissionError:
        pass


def texts_of(dataset: str, min_words: int = 0, max_words: int = 10**9) -> list[str]:
    texts = [e.text for e in load_dataset(dataset).test]
    chosen = [t for t in texts if min_words <= len(t.split()) <= max_words]
    return chosen or texts


def pct(values, q) -> float | None:
    return float(np.percentile(values, q)) * 1e3 if len(values) else None


def summarize(run: Run, duration_s: float, per_request: int) -> dict:
    """Counts by status, latency of accepted and refused requests, throughput."""
    statuses: dict[str, int] = {}
    for o in run.outcomes:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
    ok = [o.seconds for o in run.outcomes if o.status == 200]
    refused = [o.seconds for o in run.outcomes if o.status == 429]
    return {
        "requests": len(run.outcomes), "statuses": dict(sorted(statuses.items())),
        "accepted_per_s": len(ok) / duration_s, "sequences_per_s": len(ok) * per_request / duration_s,
        "accepted_ms": {"p50": pct(ok, 50), "p95": pct(ok, 95), "p99": pct(ok, 99),
                        "max": pct(ok, 100)},
        "refused_ms": {"p50": pct(refused, 50), "p99": pct(refused, 99), "max": pct(refused, 100)},
        "server_errors": sum(n for s, n in statuses.items() if s.startswith("5")),
        "no_answer": statuses.get("0", 0),
    }


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def overload(args) -> dict:
    """Many clients, several times the capacity: accepted requests stay fast, the rest are
    refused at once."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset, 80, 120)  # about 100 words each
    proc, url = start_service(out, args.models_dir, args.model, args.serve_args,
                              args.server_dir)
    try:
        bodies = bodies_for(texts, args.per_request)
        drive(url, bodies[:8], min(8, args.clients), 3)  # warm, untimed
        before = scrape(url)
        run = drive(url, bodies, args.clients, args.duration, pid=proc.pid, rss_every_s=5)
        engine = engine_figures(before, scrape(url))
    finally:
        stop(proc)
    result = {"clients": args.clients, "duration_s": args.duration,
              "texts_per_request": args.per_request, "model": args.model,
              "serve_args": args.serve_args, **summarize(run, args.duration, args.per_request),
              "rss_mib_max": max(r for _, r in run.rss), "engine": engine}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    a, r = result["accepted_ms"], result["refused_ms"]
    (out / "report.md").write_text("\n".join([
        f"# Overload: {args.clients} clients, {args.per_request} text(s) of about 100 words a "
        f"request, {args.duration} s", "",
        f"Model `{args.model}`, service flags `{' '.join(args.serve_args) or '(defaults)'}`; "
        "clients wait the Retry-After they are given after a 429.", "",
        "| statuses | accepted req/s | sequences/s | accepted p50 / p95 / p99 / max ms "
        "| refused p50 / p99 ms | 5xx | no answer | max RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
        f"| {result['statuses']} | {result['accepted_per_s']:.1f} | "
        f"{result['sequences_per_s']:.1f} | {_fmt(a['p50'])} / {_fmt(a['p95'])} / "
        f"{_fmt(a['p99'])} / {_fmt(a['max'])} | {_fmt(r['p50'])} / {_fmt(r['p99'])} | "
        f"{result['server_errors']} | {result['no_answer']} | {result['rss_mib_max']:.0f} |", ""]))
    return result


def soak(args) -> dict:
    """Steady mixed traffic for a long while, resident memory sampled every few seconds."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    proc, url = start_service(out, args.models_dir, args.model, args.serve_args,
                              args.server_dir)
    try:
        bodies = bodies_for(texts, 1, 800) + bodies_for(texts, 4, 200, seed=1)
        start_rss = rss_mib(proc.pid)
        run = drive(url, bodies, args.clients, args.duration, pid=proc.pid, rss_every_s=args.every)
    finally:
        stop(proc)
    after_minute = next((r for t, r in run.rss if t >= 60), run.rss[0][1])
    growth = run.rss[-1][1] / after_minute - 1
    trend = _trend_growth(run.rss)
    result = {"clients": args.clients, "duration_s": args.duration, "model": args.model,
              "serve_args": args.serve_args, "rss_mib_at_start": start_rss,
              "rss_mib_after_first_minute": after_minute, "rss_mib_at_end": run.rss[-1][1],
              "rss_mib_max": max(r for _, r in run.rss), "growth_after_first_minute": growth,
              "trend_growth_after_first_minute": trend,
              "rss_samples": run.rss, **summarize(run, args.duration, 1)}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot_rss(run, out / "rss.png", f"{args.model} {' '.join(args.serve_args)}")
    (out / "report.md").write_text("\n".join([
        f"# Soak: {args.clients} clients of mixed traffic for {args.duration} s", "",
        f"Model `{args.model}`, service flags `{' '.join(args.serve_args) or '(defaults)'}`; "
        f"80% single texts, 20% lists of 4 ({args.dataset} test split); RSS every {args.every} s.",
        "", "| RSS at start | after 1 min | at end | max | growth after 1 min: trend / end point "
        "| requests | statuses |", "|---|---|---|---|---|---|---|",
        f"| {start_rss:.0f} MiB | {after_minute:.0f} MiB | {run.rss[-1][1]:.0f} MiB | "
        f"{result['rss_mib_max']:.0f} MiB | {trend:+.1%} / {growth:+.1%} | {result['requests']} | "
        f"{result['statuses']} |", "", "Trend: a least-squares line through the samples after "
        "the first minute, its rise to the end over its value at one minute (single samples "
        "swing with the batches in flight).", "", "![RSS over time](rss.png)", ""]))
    return result


def _trend_growth(rss: list[tuple[float, float]]) -> float:
    later = [(t, r) for t, r in rss if t >= 60]
    if len(later) < 3:
        return float("nan")
    slope, intercept = np.polyfit([t for t, _ in later], [r for _, r in later], 1)
    start = slope * 60 + intercept
    return slope * (later[-1][0] - 60) / start


def _plot_rss(run: Run, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([t for t, _ in run.rss], [r for _, r in run.rss], marker=".")
    ax.set_xlabel("seconds")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def drain(args) -> dict:
    """SIGTERM under load: what was accepted is answered, then the process exits."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    proc, url = start_service(out, args.models_dir, args.model, args.serve_args,
                              args.server_dir)
    bodies = bodies_for(texts, 1)
    import threading

    def terminate() -> None:
        time.sleep(args.after)
        proc.send_signal(signal.SIGTERM)

    killer = threading.Thread(target=terminate)
    killer.start()
    run = drive(url, bodies, args.clients, args.after + 5)
    killer.join()
    code = proc.wait(timeout=60)
    before = [o for o in run.outcomes if o.start + o.seconds <= args.after]
    after = [o for o in run.outcomes if o.start + o.seconds > args.after]
    result = {"clients": args.clients, "sigterm_after_s": args.after, "exit_code": code,
              "answered_before_sigterm": summarize(Run(before), args.after, 1)["statuses"],
              "after_sigterm": summarize(Run(after), 5, 1)["statuses"]}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text("\n".join([
        f"# Drain: SIGTERM after {args.after} s of {args.clients} clients", "",
        "| before SIGTERM | after SIGTERM (0: connection refused or closed) | exit code |",
        "|---|---|---|",
        f"| {result['answered_before_sigterm']} | {result['after_sigterm']} | {code} |", ""]))
    stop(proc)
    return result


def bad_requests(settings=None) -> dict[str, tuple[str, bytes, int]]:
    """Malformed and over-limit requests by name: (path, body, the status the service
    answers), the limits read from the service's ``Settings``."""
    from app.settings import Settings

    limits = settings or Settings()
    too_many_tokens = "word " * 2000  # over any model's max length, within the character limit
    dump = lambda body: json.dumps(body).encode()  # noqa: E731
    return {
        "lone surrogate": ("/classify", b'{"inputs": "\\ud800"}', 422),
        "half a surrogate pair in a list": ("/classify", b'{"inputs": ["fine", "a \\udc00 b"]}', 422),
        "invalid UTF-8": ("/classify", b'{"inputs": "\xff\xfe not utf-8"}', 422),
        "JSON nested 1,500 deep": ("/classify", b'{"inputs": ' + b"[" * 1500 + b"]" * 1500 + b"}", 422),
        "binary body": ("/classify", b"\x00\x01\x02", 422),
        "empty body": ("/classify", b"", 422),
        "a number as the text": ("/classify", b'{"inputs": 42}', 422),
        "no inputs": ("/classify", b'{"inputs": []}', 422),
        "model name over the limit": (
            "/classify", dump({"inputs": "x", "model": "m" * (limits.max_model_name_chars + 1)}), 422),
        "a path as the model name": ("/classify", b'{"inputs": "x", "model": "../../etc"}', 422),
        "too many inputs": ("/classify", dump({"inputs": ["a"] * (limits.max_inputs + 1)}), 413),
        "a text over the character limit": (
            "/classify", dump({"inputs": "a" * (limits.max_text_chars + 1)}), 413),
        "a body over the byte limit": ("/classify", dump({"inputs": "a" * limits.max_body_bytes}), 413),
        "TEI: over the model's tokens, truncate false": (
            "/predict", dump({"inputs": too_many_tokens, "truncate": False}), 413),
        "TEI: inputs of the wrong shape": ("/predict", b'{"inputs": {"a": 1}}', 422),
        "TEI tokenize: lone surrogate": ("/tokenize", b'{"inputs": "\\udfff"}', 422),
        "Infinity: numbers as the input": ("/classify", b'{"input": [1, 2]}', 422),
    }


def _answer(response: httpx.Response) -> str:
    """A response's status, marked when it lacks the service's error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 and not (isinstance(body, dict)
                                            and {"error", "error_type"} <= set(body)):
        return f"{response.status_code} without the error body"
    return str(response.status_code)


def bad_input(args) -> dict:
    """Every bad request of ``bad_requests``, round after round for ``args.duration``
    seconds, while ``args.clients`` good clients keep sending one text a request: each bad
    one must get its 4xx with the error body (or a 429: admission comes before parsing),
    and no good one may be lost."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = bad_requests()
    answers: dict[str, Counter] = {name: Counter() for name in cases}
    proc, url = start_service(out, args.models_dir, args.model, args.serve_args, args.server_dir)
    until = time.monotonic() + args.duration

    def send_bad() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while True:
                for name, (path, body, _) in cases.items():
                    try:
                        answer = _answer(client.post(path, content=body,
                                                     headers={"content-type": "application/json"}))
                    except httpx.HTTPError as exc:  # no answer read: a reset, a timeout
                        answer = type(exc).__name__
                    answers[name][answer] += 1
                if time.monotonic() >= until:
                    return
                time.sleep(0.5)

    try:
        sender = threading.Thread(target=send_bad, name="bad-input")
        sender.start()
        run = drive(url, bodies_for(texts_of(args.dataset), 1), args.clients, args.duration)
        sender.join()
    finally:
        stop(proc)
    good = summarize(run, args.duration, 1)
    # admission comes before any parsing: a busy service may refuse a bad request too
    unexpected = {name: dict(got) for name, got in answers.items()
                  if not set(got) <= {str(cases[name][2]), "429"}}
    lost = sum(n for status, n in good["statuses"].items() if status not in ("200", "429"))
    tracebacks = (out / "service.log").read_text(errors="replace").count("Traceback")
    result = {"clients": args.clients, "duration_s": args.duration, "model": args.model,
              "serve_args": args.serve_args, "good": good["statuses"], "good_lost": lost,
              "good_p99_ms": good["accepted_ms"]["p99"],
              "bad": {name: {"path": cases[name][0], "expected": cases[name][2],
                             "answers": dict(answers[name])} for name in cases},
              "unexpected": unexpected, "tracebacks_in_log": tracebacks,
              "server_errors": good["server_errors"] + sum(
                  n for got in answers.values() for a, n in got.items() if a.startswith("5"))}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Bad input: {len(cases)} kinds of bad request, {args.duration} s, beside "
             f"{args.clients} good clients", "",
             f"Model `{args.model}`, service flags `{' '.join(args.serve_args) or '(defaults)'}`. "
             f"Good clients: {good['statuses']} (lost: {lost}; accepted p99 "
             f"{_fmt(good['accepted_ms']['p99'])} ms). Tracebacks in the service log: "
             f"{tracebacks}.", "", "| bad request | route | expected | answers |", "|---|---|---|---|"]
    lines += [f"| {name} | `{path}` | {status} | {dict(answers[name])} |"
              for name, (path, _, status) in cases.items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return result


def offline_seq_per_s(models_dir: str, model: str, texts: list[str], dtype: str,
                      batch_size: int = 32, rounds: int = 3) -> float:
    """The compact forward alone on ``texts`` in length-sorted batches, every core, in this
    process: what the service's throughput is measured against (best of ``rounds``)."""
    import torch

    from app.engine.backend import Backend
    from ltp.core.artifact import load_artifact
    from ltp.core.machine import tune_allocator
    from ltp.core.text import encode, length_sorted_batches

    tune_allocator()
    torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
    artifact = load_artifact(Path(models_dir) / model, dtype=dtype)
    backend = Backend({model: artifact})
    encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length)
    batches = [[encoded[i] for i in b] for b in length_sorted_batches(encoded, batch_size)]
    backend.forward(model, batches[0])
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            backend.forward(model, batch)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def offline_cpu_ms(seq_per_s: float) -> float:
    """CPU milliseconds per sequence of the offline forward, which keeps every core busy."""
    return len(os.sched_getaffinity(0)) / seq_per_s * 1e3


def served(args) -> dict:
    """Each model (and precision, and setting) through the service at one concurrency, one
    text a request, against the same model's offline compact forward at batch 32. Each of
    ``args.repeats`` rounds runs every cell, so drift hits them all alike; the offline
    figure is measured once per model and precision."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts = texts_of(args.dataset)
    offline: dict[tuple[str, str], float] = {}
    rows = []
    for repeat in range(1, args.repeats + 1):
        for dtype in args.dtypes.split(","):
            for model in args.models.split(","):
                if (model, dtype) not in offline:
                    offline[model, dtype] = offline_seq_per_s(args.models_dir, model, texts, dtype)
                for variant in args.grid.split(";"):
                    s = _served_cell(args, out, model, ["--dtype", dtype, *variant.split()], texts)
                    rows.append({"model": model, "dtype": dtype, "settings": variant or "(defaults)",
                                 "repeat": repeat, "offline_seq_per_s": offline[model, dtype],
                                 "served_req_per_s": s["accepted_per_s"],
                                 "served_over_offline": s["accepted_per_s"] / offline[model, dtype],
                                 "p50_ms": s["accepted_ms"]["p50"], "p99_ms": s["accepted_ms"]["p99"],
                                 "statuses": s["statuses"], "loop_cores": s["loop_cores"],
                                 "worker_cores": s["worker_cores"], "client_cores": s["client_cores"],
                                 "worker_cpu_ms_per_request": s["worker_cpu_ms_per_request"],
                                 "offline_cpu_ms_per_seq": offline_cpu_ms(offline[model, dtype])})
                    (out / "result.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "report.md").write_text(served_report(rows, args) + "\n")
    return {"rows": rows}


def _served_cell(args, out: Path, model: str, flags: list[str], texts: list[str]) -> dict:
    proc, url = start_service(out, args.models_dir, model, flags, args.server_dir)
    try:
        bodies = bodies_for(texts, 1, count=len(texts))
        drive(url, bodies[:64], args.clients, 3)  # warm, untimed
        before, start = thread_cpu_seconds(proc.pid), time.monotonic()
        client = time.process_time()  # the load generator runs in this process, on the same cores
        run = drive(url, bodies, args.clients, args.duration)
        client = time.process_time() - client
        after, elapsed = thread_cpu_seconds(proc.pid), time.monotonic() - start
    finally:
        stop(proc)
    summary = summarize(run, args.duration, 1)
    return (summary | cpu_split(proc.pid, before, after, elapsed, summary["statuses"].get("200", 0))
            | {"client_cores": client / elapsed})


def cpu_split(pid: int, before: dict[int, float], after: dict[int, float], elapsed: float,
              answered: int) -> dict:
    """Where the service's CPU went during a run: the main thread (the event loop, with
    tokenising and the HTTP work) against the other threads (the inference workers), in
    cores, and the workers' CPU per answered request."""
    used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
    loop = used.pop(pid, 0.0)
    workers = sum(used.values())
    return {"loop_cores": loop / elapsed, "worker_cores": workers / elapsed,
            "worker_cpu_ms_per_request": workers / answered * 1e3 if answered else None}


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
              "p50 ms | p99 ms | statuses | load client / event loop / workers, cores | worker CPU ms a "
              "request (offline ms a sequence) | served / offline at the offline cost |",
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
    """The load client's, the event loop's and the workers' cores; the workers' CPU per
    request against the offline forward's per sequence; and the served / offline ratio the
    workers' cores allow if they computed at the offline forward's CPU cost per sequence
    (their share of the cores the offline forward had to itself): "-" for runs recorded
    without them."""
    if any(r.get("worker_cores") is None for r in runs):
        return "-", "-", "-"
    cores = " / ".join(_spread([r.get(key) for r in runs], ".2f")
                       for key in ("client_cores", "loop_cores", "worker_cores"))
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
