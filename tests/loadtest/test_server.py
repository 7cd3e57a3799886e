"""The one way the load tests start `ltp serve` (and nginx refusing everything): ready when
handed over, below its clients' priority, stopped on leaving the block."""

import os
from pathlib import Path

import httpx

from loadtest.server import ltp_serve, nginx_refusal, run_below_clients


def thread_nices(pid: int) -> set[int]:
    return {int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])  # field 19: nice
            for task in Path(f"/proc/{pid}/task").iterdir()}


def test_ltp_serve_is_ready_runs_below_its_clients_and_stops(models_dir, tmp_path):
    with ltp_serve(tmp_path / "service.log", models_dir, ["tiny-topics", "tiny-ltp"]) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        r = httpx.post(f"{server.url}/classify", json={"inputs": "good film"}, timeout=30)
        assert r.status_code == 200 and r.json()["model"] == "tiny-topics", "the first is the default"
        run_below_clients(server)
        assert thread_nices(server.pid) == {min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)}
    assert server.proc.poll() is not None
    assert "Finished server process" in (tmp_path / "service.log").read_text()


def test_nginx_refusal_refuses_and_its_worker_runs_below_the_clients(tmp_path):
    with nginx_refusal(tmp_path / "nginx") as server:  # `make test` installs nginx
        r = httpx.post(f"{server.url}/classify", json={"inputs": "good film"})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert r.json()["error_type"] == "overloaded"
        workers = [int(c) for task in Path(f"/proc/{server.pid}/task").iterdir()
                   for c in (task / "children").read_text().split()]
        assert len(workers) == 1
        run_below_clients(server)
        below = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        assert thread_nices(server.pid) == thread_nices(workers[0]) == {below}
    assert server.proc.poll() is not None
