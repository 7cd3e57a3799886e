"""The floor of an answer from Python: a bare ASGI app that refuses every request with the
service's 429 body, no framework, no middleware, nothing decided.

    uvicorn loadtest.baselines.refuse_app:app --port 8002

``GET /healthz`` answers 200 so that a load test can wait for it. The ``burst`` scenario
sends it the bursts it sends the service, on the same server and at the same priority, so
the difference between the two is what the service's own layers cost a refusal.
"""

from __future__ import annotations

import orjson

BODY = orjson.dumps({"error": "overloaded: refused by the bare baseline app",
                     "error_type": "overloaded"})
REFUSED = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY)),
           (b"retry-after", b"1")]
HEALTHY = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": HEALTHY})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send({"type": "http.response.start", "status": 429, "headers": REFUSED})
    await send({"type": "http.response.body", "body": BODY})
