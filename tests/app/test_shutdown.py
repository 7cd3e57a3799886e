"""`ltp serve` as a real process: SIGTERM stops intake, finishes what is queued, exits."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx

from loadtest.processes import free_port, wait_http


def start_serve(models_dir, port, *extra):
    env = os.environ | {"LTP_MAX_WAIT_MS": "400"}  # sequences sit in the queue for a while
    cmd = [sys.executable, "-m", "app.cli", "serve", "--models-dir", str(models_dir),
           "--default-model", "tiny-ltp", "--device", "cpu", "--host", "127.0.0.1",
           "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", 60, proc)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def test_sigterm_drains_queued_requests(models_dir):
    port = free_port()
    proc = start_serve(models_dir, port)
    url = f"http://127.0.0.1:{port}"

    async def load():
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            tasks = [asyncio.create_task(client.post("/classify", json={"inputs": f"good film {i}"}))
                     for i in range(12)]
            await asyncio.sleep(0.15)  # all sent, waiting in the queue
            proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

    try:
        responses = asyncio.run(load())
        assert [r.status_code for r in responses] == [200] * 12
        # a drain that answered everything it accepted is a clean exit, not death by signal
        assert proc.wait(timeout=30) == 0
        log = proc.stdout.read().decode()
        assert "Finished server process" in log
    finally:
        if proc.poll() is None:
            proc.kill()
