"""A real server under strange input, overload, idle connections and clients that leave.

Each defect gets its own test: a lone surrogate and the next request on the same connection,
a body over the limit (chunked or declared), an unknown model's metric label, keep-alive at
the idle boundary, 429 with a Retry-After computed from the backlog, abandoned work not
computed.
"""

import asyncio
import http.client
import json
import logging
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from app.engine.backend import Backend
from app.settings import Settings
from tests.app.conftest import RunningServer, settings_for

REPO = Path(__file__).resolve().parents[2]
GOOD = json.dumps({"inputs": "a good film"})


def post(conn: http.client.HTTPConnection, body: bytes | str, path: str = "/classify",
         headers: dict | None = None):
    conn.request("POST", path, body=body, headers={"content-type": "application/json",
                                                   **(headers or {})})
    r = conn.getresponse()
    return r, r.read()


@pytest.fixture(scope="module")
def live(models_dir):
    with RunningServer(settings_for(models_dir, max_body_bytes=4096)) as server:
        yield server


STRANGE = [
    b'{"inputs": "\\ud800"}',  # a lone surrogate
    b'{"inputs": ["fine", "a \\udc00 b"]}',
    b'{"inputs": [["ok", "\\ud83d"]]}',  # half a pair, inside a sentence pair
    b'{"inputs": "\xff\xfe not utf-8"}',
    b'{"inputs": ' + b"[" * 1500 + b"]" * 1500 + b"}",  # deep JSON
    b'{"inputs": "x", "model": "' + b"m" * 3000 + b'"}',  # a huge model name
    b'{"inputs": "x", "model": "../../etc"}',
    b"\x00\x01\x02",
    b"",
]


@pytest.mark.parametrize("body", STRANGE)
def test_strange_input_is_a_422_and_the_connection_keeps_serving(live, body):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    r, raw = post(conn, body)
    assert r.status == 422, raw
    error = json.loads(raw)
    assert set(error) == {"error", "error_type"} and error["error_type"] == "invalid_input"
    assert len(raw) < 300, "the input is not echoed back"
    sock = conn.sock
    for _ in range(3):  # the next requests on the same keep-alive connection
        r, raw = post(conn, GOOD)
        assert r.status == 200, raw
    assert conn.sock is sock, "the connection was not dropped"
    conn.close()


def test_nul_bytes_and_control_characters_are_classified(live):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    r, raw = post(conn, json.dumps({"inputs": ["good\u0000film", "\u0007\u001b bad", "😀 fun"]}))
    assert r.status == 200, raw
    assert len(json.loads(raw)["results"]) == 3


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "declared-length"])
def test_body_over_the_limit_is_413_and_the_next_request_is_served(live, chunked):
    # sent in full before the answer is read: a server that closed with the body unread
    # would reset the connection, and the client could see an error instead of the 413
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    for _ in range(1 if chunked else 5):
        if chunked:
            chunks = (b'{"inputs": "' if i == 0 else b"a" * 1000 for i in range(10))
            conn.request("POST", "/classify", body=chunks, encode_chunked=True,
                         headers={"content-type": "application/json",
                                  "transfer-encoding": "chunked"})
            r = conn.getresponse()
            raw = r.read()
        else:
            r, raw = post(conn, json.dumps({"inputs": "a" * 12_000}))
        assert r.status == 413 and json.loads(raw)["error_type"] == "payload_too_large"
        assert r.getheader("connection") != "close"  # the rest was read and dropped
    sock = conn.sock
    r, raw = post(conn, GOOD)
    assert r.status == 200, raw
    assert conn.sock is sock, "the next request went on the same connection"


def test_declared_body_far_over_the_limit_is_refused_unread(live):
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("POST", "/classify")
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(4096 * 100))
    conn.endheaders()  # no body sent: the answer comes without waiting for it
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error_type"] == "payload_too_large"
    assert r.getheader("connection") == "close"


def test_unknown_routes_and_methods_answer_the_error_body(live):
    r = httpx.get(f"{live.url}/nope")
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    r = httpx.get(f"{live.url}/classify")
    assert r.status_code == 405 and set(r.json()) == {"error", "error_type"}


def test_an_unexpected_exception_is_a_500_with_the_error_body_wherever_it_is_raised(
        models_dir, caplog):
    """In a route and in admission, before any parsing: the guard answers with the error
    body and Connection: close, and logs one line with the exception raised."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    app = create_app(settings_for(models_dir))

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as c, caplog.at_level(logging.ERROR, "app"):
        answers = [c.get("/boom")]

        def broken(*args):
            raise RuntimeError("a bug in admission")

        app.state.front.engine.admit_early = broken
        answers.append(c.post("/classify", content=GOOD))
    for r in answers:
        assert r.status_code == 500 and r.headers["connection"] == "close"
        assert r.json() == {"error": "internal error", "error_type": "internal_error"}
    logged = [rec for rec in caplog.records if "unhandled error" in rec.getMessage()]
    assert [rec.getMessage() for rec in logged] == ["unhandled error on /boom",
                                                    "unhandled error on /classify"]
    assert [str(rec.exc_info[1]) for rec in logged] == ["a bug", "a bug in admission"]


def test_unknown_model_names_share_one_metric_label(live):
    for i in range(20):
        r = httpx.post(f"{live.url}/classify", json={"inputs": "x", "model": f"random-{i}"})
        assert r.status_code == 404 and "random-" in r.json()["error"]
    metrics = httpx.get(f"{live.url}/metrics").text
    assert "random-" not in metrics
    assert re.search(r'ltp_requests_total\{model="unknown",status="404"\} (\d+)', metrics)


def test_keep_alive_outlasts_the_proxy_and_an_idle_connection_is_reused(models_dir):
    nginx = (REPO / "deploy/nginx/ltp.conf.template").read_text()
    proxy_idle = int(re.search(r"keepalive_timeout (\d+)s;", nginx).group(1))
    assert Settings().keep_alive_s > proxy_idle, "the proxy must close idle connections first"
    with RunningServer(settings_for(models_dir, keep_alive_s=1.5)) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert post(conn, GOOD)[0].status == 200
        sock = conn.sock
        time.sleep(1.0)  # idle, under the keep-alive
        assert post(conn, GOOD)[0].status == 200
        assert conn.sock is sock
        sock.settimeout(3.0)  # idle past it: the server closes the connection cleanly
        assert sock.recv(1) == b""


class SlowBackend(Backend):
    """The real backend, slowed down and noting which sequences it computed."""

    def __init__(self, artifacts, delay_s: float):
        super().__init__(artifacts)
        self.delay_s, self.computed, self.lock = delay_s, [], threading.Lock()

    def run(self, batch):
        time.sleep(self.delay_s)
        stats = super().run(batch)  # tokenises the batch's texts first
        with self.lock:
            self.computed += [e.encoded.input_ids for e in batch.entries]
        return stats


def slow_server(models_dir, delay_s: float, **overrides) -> RunningServer:
    server = RunningServer(settings_for(models_dir, workers=1, threads=1, **overrides))
    server.__enter__()
    engine = server.server.config.app.state.front.engine
    engine.backend = SlowBackend(engine.backend.artifacts, delay_s)
    for cost in engine.policy.costs.values():  # what the service would learn from such batches
        cost.per_batch_s, cost.per_token_s = delay_s, 0.0
    return server


def test_overload_is_refused_at_once_with_retry_after_from_the_backlog(models_dir):
    server = slow_server(models_dir, 0.3, max_queue_wait_ms=500, max_batch_size=2)
    try:
        async def burst():
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                async def one(i):
                    start = time.monotonic()
                    r = await client.post("/classify", json={"inputs": f"good film {i}"})
                    return r, time.monotonic() - start

                return await asyncio.gather(*(one(i) for i in range(20)))

        answers = asyncio.run(burst())
    finally:
        server.__exit__()
    ok = [(r, s) for r, s in answers if r.status_code == 200]
    refused = [(r, s) for r, s in answers if r.status_code == 429]
    assert len(ok) + len(refused) == 20 and ok and refused
    for r, seconds in refused:
        assert r.json()["error_type"] == "overloaded"
        assert int(r.headers["retry-after"]) >= 1
        # a refusal does not wait for the backlog: it is back before any accepted answer
        assert seconds < min(s for _, s in ok)
    # 0.3 s a batch of 2 against a 0.5 s wait limit: most of the burst is refused, and what
    # was accepted started within the limit (one batch of slack for the estimate)
    assert len(refused) >= 10
    assert max(float(r.headers["x-queue-ms"]) for r, _ in ok) < 500 + 300


def test_a_client_deadline_header_caps_the_wait(models_dir):
    server = slow_server(models_dir, 0.4)
    try:
        async def two():
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                first = asyncio.create_task(client.post("/classify", json={"inputs": "good"}))
                await asyncio.sleep(0.05)
                second = await client.post("/classify", json={"inputs": "bad"},
                                           headers={"X-Request-Timeout-Ms": "100"})
                return await first, second

        first, second = asyncio.run(two())
    finally:
        server.__exit__()
    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["error_type"] == "overloaded"


def test_a_malformed_deadline_header_is_a_422(live):
    r = httpx.post(f"{live.url}/classify", json={"inputs": "good"},
                   headers={"X-Request-Timeout-Ms": "soon"})
    assert r.status_code == 422 and r.json()["error_type"] == "invalid_input"


def test_abandoned_requests_are_not_computed_and_are_counted_once(models_dir, caplog):
    server = slow_server(models_dir, 2.0, max_wait_ms=0, max_queue_wait_ms=10_000)
    backend = server.server.config.app.state.front.engine.backend
    caplog.set_level(logging.INFO)
    try:
        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                busy = asyncio.create_task(client.post("/classify", json={"inputs": "good"}))
                await asyncio.sleep(0.1)  # the worker is now busy with it for 2 s
                async with httpx.AsyncClient(base_url=server.url, timeout=0.3) as impatient:
                    gone = await asyncio.gather(*(
                        impatient.post("/classify", json={"inputs": f"plot number {i}"})
                        for i in range(5)), return_exceptions=True)
                assert all(isinstance(g, httpx.TimeoutException) for g in gone), gone
                return await busy

        assert asyncio.run(scenario()).status_code == 200
        time.sleep(0.5)  # the worker is free again: anything left would run now
        metrics = httpx.get(f"{server.url}/metrics").text
    finally:
        server.__exit__()
    assert len(backend.computed) == 1, "only the request whose client stayed was computed"
    assert re.search(r'ltp_requests_total\{model="tiny-ltp",status="499"\} 5\.0', metrics)
    assert re.search(r'ltp_rejections_total\{reason="client_closed"\} 5\.0', metrics)
    lines = [r for r in caplog.records if "client closed" in r.getMessage()]
    assert len(lines) == 5 and all(r.levelno == logging.INFO and not r.exc_info for r in lines)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_turn_of_the_loop_lets_only_so_many_admitted_requests_go_on():
    """Nine admitted requests, three a turn: work that arrives during the burst (here a task
    started beside them) runs after the first three, not after all nine."""
    from app.middleware import Turns

    async def scenario():
        turns, order = Turns(per_turn=3), []

        async def admitted(i):
            await turns.wait()
            order.append(i)

        async def arrival():
            await asyncio.sleep(0)
            order.append("arrival")

        await asyncio.gather(*(admitted(i) for i in range(9)), arrival())
        return order

    order = asyncio.run(scenario())
    assert order == [0, 1, 2, "arrival", 3, 4, 5, 6, 7, 8]
