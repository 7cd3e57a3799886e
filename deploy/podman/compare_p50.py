"""/classify at one client: the image in a container against the same server outside it.

    python deploy/podman/compare_p50.py --models-dir /work/main/models --out reports/deploy

Same machine, one run each, one text per request, 300 requests after 30 of warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.deploy.container import free_port, run_container  # noqa: E402

BODY = {"inputs": "The coffee arrived fresh and tastes wonderful, I will order it again."}


def latencies(url: str, n: int = 300, warmup: int = 30) -> list[float]:
    out = []
    with httpx.Client(timeout=30) as client:
        for i in range(warmup + n):
            start = time.perf_counter()
            client.post(f"{url}/classify", json=BODY).raise_for_status()
            if i >= warmup:
                out.append(time.perf_counter() - start)
    return out


def wait_ready(url: str, timeout_s: float = 240) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(url)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--models-dir", required=True)
    p.add_argument("--model", default="reviews-minilm-ltp")
    p.add_argument("--image", default="ltp-serve:cpu")
    p.add_argument("--out", default="reports/deploy")
    args = p.parse_args()
    result = {}
    c = run_container(args.image, "--read-only", "--tmpfs", "/tmp:rw,size=1g", "--memory", "2g")
    try:
        result["container_ready_s"] = wait_ready(c.url)
        result["container_p50_ms"] = statistics.median(latencies(c.url)) * 1e3
    finally:
        c.remove()
    port = free_port()
    env = dict(os.environ, LTP_MODELS_DIR=args.models_dir, LTP_MODELS=json.dumps([args.model]),
               LTP_DEFAULT_MODEL=args.model, LTP_PORT=str(port), LTP_HOST="127.0.0.1",
               LTP_WORKERS="2", LTP_THREADS="1", OMP_NUM_THREADS="1")
    server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        result["host_ready_s"] = wait_ready(url)
        result["host_p50_ms"] = statistics.median(latencies(url)) * 1e3
    finally:
        server.terminate()
        server.wait(30)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "p50-inside-outside.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
