"""Closed-loop HTTP clients on raw asyncio streams, for the scenarios that start their own
service (overload, soak, drain, bad input, served), and what they send: a data set's texts.

Hundreds of keep-alive connections from one process at a small CPU cost (a plain HTTP/1.1
client, no library per request), each request's status and latency recorded, the server
process's resident memory sampled beside it. Well-behaved clients: after a 429 a client
waits the ``Retry-After`` it was given, plus up to half as much again at random (all at once
they would come back as one burst), before its next request.

Traffic goes to loopback only; every run is bounded by its duration.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ltp.data.datasets import load_dataset


@dataclass
class Outcome:
    start: float  # seconds since the run began
    seconds: float
    status: int  # 0: the connection failed or closed without an answer


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)


async def _request(reader, writer, host: str, path: str, body: bytes) -> tuple[int, dict]:
    writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body))
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


# a request that failed on the way: the connection refused, reset or closed early, or an
# answer that is not HTTP
FAILED = (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError)


def _address(url: str) -> tuple[str, str, int]:
    """``http://host:port`` -> ("host:port", host, port)."""
    host_port = url.split("://", 1)[1]
    host, port = host_port.split(":")
    return host_port, host, int(port)


async def _client(url: str, bodies: list[bytes], rng: random.Random, t0: float, until: float,
                  run: Run, path: str) -> None:
    host_port, host, port = _address(url)
    reader = writer = None
    while time.monotonic() < until:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                run.outcomes.append(Outcome(time.monotonic() - t0, 0.0, 0))
                await asyncio.sleep(0.1)
                continue
        start = time.monotonic()
        try:
            status, headers = await _request(reader, writer, host_port, path, rng.choice(bodies))
        except FAILED:
            run.outcomes.append(Outcome(start - t0, time.monotonic() - start, 0))
            writer.close()
            reader = writer = None
            await asyncio.sleep(0.1)  # as a client would before it reconnects
            continue
        run.outcomes.append(Outcome(start - t0, time.monotonic() - start, status))
        if headers.get("connection") == "close":
            writer.close()
            reader = writer = None
        if status == 429:  # back off as asked, with jitter so refused clients do not return
            await asyncio.sleep(float(headers.get("retry-after", "1")) * rng.uniform(1, 1.5))
    if writer is not None:
        writer.close()


def _freeze_heap() -> None:
    """Take what this process holds so far (the data set, the libraries: it lives for the
    whole run) out of the collector's sight, as the service does at start-up. Otherwise a
    full collection walks it in the middle of the traffic and every client of the event
    loop waits (80-200 ms measured here), and the wait counts as the server's latency."""
    gc.collect()
    gc.freeze()


async def _once(url: str, body: bytes, t0: float, path: str) -> Outcome:
    """One connection, one request, then closed."""
    host_port, host, port = _address(url)
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return Outcome(time.monotonic() - t0, 0.0, 0)
    start = time.monotonic()
    try:
        status, _ = await _request(reader, writer, host_port, path, body)
    except FAILED:
        status = 0
    outcome = Outcome(start - t0, time.monotonic() - start, status)
    writer.close()
    return outcome


def bursts(url: str, bodies: list[bytes], clients: int, rounds: int, pause_s: float = 1.0,
           path: str = "/classify", seed: int = 0) -> list[list[Outcome]]:
    """``rounds`` bursts: in each, ``clients`` clients open their connections and send one
    request at once (as every client of a run does in its first second), then the next
    burst follows ``pause_s`` after the last answer, the server idle again."""
    rng = random.Random(seed)
    _freeze_heap()

    async def main() -> list[list[Outcome]]:
        out = []
        for _ in range(rounds):
            t0 = time.monotonic()
            out.append(list(await asyncio.gather(
                *(_once(url, rng.choice(bodies), t0, path) for _ in range(clients)))))
            await asyncio.sleep(pause_s)
        return out

    return asyncio.run(main())


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) each thread of ``pid`` has used so far, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return out


def idle_cpu_seconds() -> float:
    """Seconds every core of this machine has spent idle since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle, iowait


async def _sample(pid: int, every_s: float, t0: float, until: float, run: Run) -> None:
    while time.monotonic() < until:
        run.rss.append((time.monotonic() - t0, rss_mib(pid)))
        await asyncio.sleep(every_s)
    run.rss.append((time.monotonic() - t0, rss_mib(pid)))


def drive(url: str, bodies: list[bytes], clients: int, duration_s: float, pid: int | None = None,
          rss_every_s: float = 10.0, path: str = "/classify", seed: int = 0) -> Run:
    """``clients`` closed-loop clients for ``duration_s``; the server's RSS sampled if ``pid``."""
    run = Run()
    _freeze_heap()

    async def main() -> None:
        t0 = time.monotonic()
        until = t0 + duration_s
        tasks = [_client(url, bodies, random.Random(seed + i), t0, until, run, path)
                 for i in range(clients)]
        if pid is not None:
            tasks.append(_sample(pid, rss_every_s, t0, until, run))
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return run


def _probe(url: str, body: bytes, every_s: float, duration_s: float, path: str, out) -> None:
    """One blocking keep-alive connection, a request every ``every_s``; (status, seconds)
    of each into the queue ``out``, then None."""
    import http.client

    host, port = url.split("://", 1)[1].split(":")
    until = time.monotonic() + duration_s
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < until:
        start = time.monotonic()
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            out.put((response.status, time.monotonic() - start))
            if response.getheader("connection") == "close":
                connection.close()
        except (OSError, http.client.HTTPException):
            out.put((0, time.monotonic() - start))
            connection.close()
        time.sleep(max(0.0, every_s - (time.monotonic() - start)))
    connection.close()
    out.put(None)


class Probe:
    """A light client in a process of its own beside the load: what one request among the
    crowd sees when its own client is not the one overloaded (the load's clients share
    their event loop and the cores with the service). ``with Probe(...) as probe:`` around
    the load; ``probe.outcomes`` after."""

    def __init__(self, url: str, body: bytes, duration_s: float, every_s: float = 0.05,
                 path: str = "/classify") -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._process = context.Process(target=_probe, daemon=True,
                                        args=(url, body, every_s, duration_s, path, self._queue))
        self.outcomes: list[Outcome] = []

    def __enter__(self) -> Probe:
        self._process.start()
        return self

    def __exit__(self, *exc) -> None:
        while (item := self._queue.get(timeout=60)) is not None:
            self.outcomes.append(Outcome(0.0, item[1], item[0]))
        self._process.join(10)


def bodies_for(texts: list[str], per_request: int, count: int = 512, seed: int = 0,
               model: str | None = None) -> list[bytes]:
    """Request bodies of ``per_request`` texts each, drawn from ``texts``."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        chosen = rng.sample(texts, per_request) if per_request > 1 else rng.choice(texts)
        body = {"inputs": chosen}
        if model:
            body["model"] = model
        out.append(orjson.dumps(body))
    return out


def texts_of(dataset: str, min_words: int = 0, max_words: int = 10**9) -> list[str]:
    """The test split's texts of ``min_words`` to ``max_words`` words (every text when none is)."""
    texts = [e.text for e in load_dataset(dataset).test]
    chosen = [t for t in texts if min_words <= len(t.split()) <= max_words]
    return chosen or texts
