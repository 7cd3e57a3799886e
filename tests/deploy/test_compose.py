"""Compose for real (podman-compose, `make compose-up`): the api image and a Prometheus that
finds it through the compose network's DNS and scrapes its `ltp_` series.

Skipped where podman-compose or the api image is missing (CI builds no images), or where the
compose file's host ports are taken. Everything the test starts is brought down after it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest

from tests.deploy.container import REPO, podman_env, why_no_image

IMAGE = "localhost/ltp-serve:cpu"  # what docker-compose.podman.yml runs
PROJECT = "ltpcomposetest"
API, PROMETHEUS = "http://127.0.0.1:8000", "http://127.0.0.1:9090"
READY_TIMEOUT_S = 240


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _why_not() -> str | None:
    if shutil.which("podman-compose") is None:
        return "podman-compose is not installed (Debian's podman-compose)"
    if why := why_no_image(IMAGE):
        return why
    if taken := [p for p in (8000, 9090) if _port_taken(p)]:
        return f"the compose file's host port(s) {taken} are in use"
    return None


WHY_NOT = _why_not()  # asked once: it runs podman
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def compose(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "deploy/podman/compose.sh"), "-p", PROJECT, *args],
                          env=podman_env(), capture_output=True, text=True, timeout=timeout)


def _wait(what: str, check, timeout_s: float = READY_TIMEOUT_S):
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if value := check():
                return value
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(what)


@pytest.fixture(scope="module")
def stack():
    up = compose("up", "-d", "api", "prometheus")
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        _wait("api ready", lambda: httpx.get(f"{API}/readyz", timeout=5).status_code == 200)
        yield
    finally:
        compose("down", timeout=120)


def _query(expr: str) -> list:
    r = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    return r.json()["data"]["result"]


def test_prometheus_scrapes_the_api_it_found_through_dns(stack):
    def target_up():
        r = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()
        return [t for t in r["data"]["activeTargets"]
                if t["labels"]["job"] == "ltp-api" and t["health"] == "up"]

    assert _wait("the api target up", target_up, 120)


def test_the_requests_sent_show_in_prometheus(stack):
    for _ in range(5):
        r = httpx.post(f"{API}/classify", json={"inputs": "Fresh, and it tastes wonderful."},
                       timeout=30)
        assert r.status_code == 200, r.text

    def counted() -> float:  # the five answers, once a scrape (every 5 s) has seen them
        v = _query('sum(ltp_requests_total{model="reviews-minilm-ltp", status="200"})')
        return float(v[0]["value"][1]) if v and float(v[0]["value"][1]) >= 5 else 0.0

    assert _wait("the requests counted", counted, 60) == 5.0
    names = httpx.get(f"{PROMETHEUS}/api/v1/label/__name__/values", timeout=10).json()["data"]
    assert {"ltp_requests_total", "ltp_kept_tokens_bucket", "ltp_flops_saved_ratio_bucket",
            "ltp_model_info"} <= set(names)
