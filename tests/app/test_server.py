"""The service at the socket: refusals answered where the request's head is parsed, with
the bytes the ASGI path sends; admitted requests started a few a turn of the loop; every
connection waiting in the kernel accepted at once."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import socket

import httpx

from app.middleware import Turns
from app.server import accept_waiting
from tests.app.conftest import RunningServer, settings_for

BODY = b'{"inputs": "a good film"}'
REQUEST = (b"POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


def exchange(sock: socket.socket, request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Send one request on a kept-alive socket; its status line, headers and body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    status, *lines = head.split(b"\r\n")
    headers = dict(line.split(b": ", 1) for line in lines)
    while len(body) < int(headers[b"content-length"]):
        body += sock.recv(65536)
    return status, headers, body


def overloaded(server: RunningServer) -> None:
    """Make admission refuse every request: a second of work held against a 1 ms limit."""
    engine = server.server.config.app.state.front.engine
    for cost in engine.policy.costs.values():
        cost.per_batch_s, cost.per_token_s = engine.policy.limits.max_batch_size, 0.0
    engine.policy.reserve("tiny-ltp", 10, 512)


def count_asgi_calls(server: RunningServer) -> list:
    """Count the ASGI app's calls for /classify on connections opened from now on."""
    config, called = server.server.config, []
    app = config.loaded_app

    async def counting(scope, receive, send):
        if scope["path"] == "/classify":
            called.append(scope["path"])
        return await app(scope, receive, send)

    config.loaded_app = counting
    return called


def test_a_refusal_at_the_socket_is_the_asgi_paths_refusal_and_the_connection_serves_on(
        models_dir):
    answers = {}
    for name, options in (("protocol", {}), ("asgi", {"http": "httptools"})):
        with RunningServer(settings_for(models_dir, max_queue_wait_ms=1), **options) as server:
            overloaded(server)
            called = count_asgi_calls(server)
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                refusals = [exchange(sock, REQUEST) for _ in range(2)]
                server.server.config.app.state.front.engine.policy.release(10.0)
                served = exchange(sock, REQUEST)  # the same connection, once there is room
            metrics = httpx.get(f"{server.url}/metrics").text
        answers[name] = refusals
        # the protocol answers refusals without starting the ASGI app; the ASGI path runs it
        assert len(called) == {"protocol": 1, "asgi": 3}[name]
        assert served[0] == b"HTTP/1.1 200 OK" and b'"label"' in served[2]
        assert re.search(r'ltp_requests_total\{model="unknown",status="429"\} 2\.0', metrics)
        assert re.search(r'ltp_rejections_total\{reason="overloaded"\} 2\.0', metrics)
    for status, headers, body in answers["protocol"]:
        assert status == b"HTTP/1.1 429 Too Many Requests"
        assert int(headers[b"retry-after"]) >= 1 and b"connection" not in headers
        assert body.startswith(b'{"error":"overloaded: about ') and body.endswith(
            b'"error_type":"overloaded"}')
    # byte for byte what the ASGI path writes, but for the date and the backlog's figure
    def comparable(answer):
        status, headers, body = answer
        return status, sorted(headers.items() - {(b"date", headers[b"date"])} - {
            (b"content-length", headers[b"content-length"])}), re.sub(rb"\d+", b"N", body)

    assert [comparable(a) for a in answers["protocol"]] == [comparable(a) for a in answers["asgi"]]


def test_an_admission_failure_at_the_socket_is_answered_by_the_error_guard(models_dir, caplog):
    with RunningServer(settings_for(models_dir)) as server, caplog.at_level(logging.ERROR, "app"):
        def broken(*args):
            raise RuntimeError("a bug in admission")

        server.server.config.app.state.front.engine.admit_early = broken
        r = httpx.post(f"{server.url}/classify", json={"inputs": "good"})
    assert r.status_code == 500 and r.headers["connection"] == "close"
    assert r.json() == {"error": "internal error", "error_type": "internal_error"}
    assert [str(rec.exc_info[1]) for rec in caplog.records
            if "unhandled error" in rec.getMessage()] == ["a bug in admission"]


def test_requests_admitted_at_the_socket_start_a_few_a_turn_in_order():
    """Nine admitted at once, three a turn: three start in the callback that admitted them,
    the rest three a turn, in the order they came, each turn after the loop read its sockets."""

    async def scenario():
        turns, started, seen = Turns(per_turn=3), [], []
        for i in range(9):
            turns.start(lambda i=i: started.append(i))
        seen.append(list(started))
        for _ in range(8):
            await asyncio.sleep(0)  # one turn of the loop
            seen.append(list(started))
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == [0, 1, 2] and seen[-1] == list(range(9))
    growth = [len(b) - len(a) for a, b in itertools.pairwise(seen)]
    assert max(growth) <= 3 and sum(growth) == 6


def test_every_connection_waiting_in_the_kernel_is_accepted_at_once():
    """Five connections queued on a listening socket: one call accepts them all and each gets
    its protocol from the factory, connected, as the server's own accept would."""

    class Recording(asyncio.Protocol):
        made: list = []

        def connection_made(self, transport):
            Recording.made.append(transport)

    async def scenario():
        listening = socket.create_server(("127.0.0.1", 0))
        listening.setblocking(False)
        clients = [socket.create_connection(listening.getsockname()) for _ in range(5)]
        tasks: set = set()
        first = accept_waiting([listening], Recording, tasks)
        await asyncio.gather(*tasks)
        again = accept_waiting([listening], Recording, tasks)
        for transport in Recording.made:
            transport.close()
        for sock in (*clients, listening):
            sock.close()
        return first, again, len(Recording.made)

    assert asyncio.run(scenario()) == (5, 0, 5)


def test_the_server_accepts_waiting_connections_whenever_one_is_made(models_dir):
    """The protocol drains the queue on each connection; the server wires the drain to its
    listening socket while it serves, and unwires it (copies closed) when it stops."""
    with RunningServer(settings_for(models_dir)) as server:
        state = server.server.config.app.state
        drain = state.accept_waiting
        assert drain.func is accept_waiting
        listeners = drain.args[0]
        assert [s.getsockname()[1] for s in listeners] == [server.port]
        calls = []
        state.accept_waiting = lambda: calls.append(drain())
        for _ in range(3):  # a new connection each
            assert httpx.post(f"{server.url}/classify", json={"inputs": "good"}).status_code == 200
        assert len(calls) == 3
    assert state.accept_waiting is None and all(s.fileno() == -1 for s in listeners)
