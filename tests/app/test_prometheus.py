"""A real Prometheus (Debian package) scrapes the running service on loopback."""

import shutil
import subprocess
import time

import httpx
import pytest

from tests.app.conftest import free_port


@pytest.fixture
def prometheus(tmp_path, server):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus; .ci/run does it)")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: ltp\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def query(url: str, expr: str) -> list:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_prometheus_scrapes_kept_tokens_and_flops(server, prometheus):
    for text in ["good film", "the plot was not fun and the movie was dull", "great"]:
        assert httpx.post(f"{server.url}/classify", json={"inputs": text}).status_code == 200
    wanted = ['ltp_kept_tokens_count{model="tiny-ltp"}', 'ltp_flops_total{model="tiny-ltp"}',
              'ltp_flops_dense_total{model="tiny-ltp"}', "ltp_flops_saved_ratio_bucket"]
    found: dict[str, list] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(found) < len(wanted):
        for expr in wanted:
            try:
                result = query(prometheus, expr)
            except httpx.HTTPError:
                result = []
            if result:
                found[expr] = result
        time.sleep(0.5)
    assert set(found) == set(wanted), f"series missing from Prometheus: {set(wanted) - set(found)}"
    assert float(found['ltp_kept_tokens_count{model="tiny-ltp"}'][0]["value"][1]) >= 3
    spent = float(found['ltp_flops_total{model="tiny-ltp"}'][0]["value"][1])
    dense = float(found['ltp_flops_dense_total{model="tiny-ltp"}'][0]["value"][1])
    assert 0 < spent < dense
