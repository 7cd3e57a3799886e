"""``bad-input``: malformed and over-limit requests, round after round, beside good traffic:
each must get its 4xx with the service's error body, and no good request may be lost.

    python -m loadtest bad-input --clients 8 --duration 20 --out reports/bad-input
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from loadtest.reports import bad_input_report
from loadtest.results import summarize
from loadtest.scenarios.common import finish, service_arguments, start_service, write
from loadtest.traffic import bodies_for, drive, texts_of


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


def _send_bad(url: str, cases: dict, answers: dict[str, Counter], until: float) -> None:
    """Every bad request in turn, round after round, until ``until`` (monotonic)."""
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


def bad_input(args: argparse.Namespace) -> dict:
    """Every bad request of ``bad_requests``, round after round for ``args.duration``
    seconds, while ``args.clients`` good clients keep sending one text a request: each bad
    one must get its 4xx with the error body (or a 429: admission comes before parsing),
    and no good one may be lost."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = bad_requests()
    answers: dict[str, Counter] = {name: Counter() for name in cases}
    with start_service(args, out) as server:
        sender = threading.Thread(target=_send_bad, name="bad-input",
                                  args=(server.url, cases, answers, time.monotonic() + args.duration))
        sender.start()
        run = drive(server.url, bodies_for(texts_of(args.dataset), 1), args.clients, args.duration)
        sender.join()
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
    write(out, result, bad_input_report(result))
    return result


def add_arguments(p: argparse.ArgumentParser) -> None:
    service_arguments(p, clients=8, duration=20)


def main(args: argparse.Namespace) -> int:
    return finish(bad_input(args), Path(args.out))
