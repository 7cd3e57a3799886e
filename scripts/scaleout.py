"""Scale-out on loopback with the real parts: N service instances, nginx with the repo's
load-balancer config in front, Prometheus with the repo's scrape config pointed at all.

    python scripts/scaleout.py --models-dir models --default-model sentiment-minilm-ltp

Sends requests through nginx, checks every one is answered and every instance served some,
and waits until Prometheus's query API returns ltp_ series from every instance. Everything
is stopped at the end, also on failure. Prints a JSON summary; exits 1 on a failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import yaml

from loadtest.processes import free_port, stop, wait_http

REPO = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = REPO / "deploy" / "nginx" / "ltp.conf.template"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"


class ScaleoutError(RuntimeError):
    """A check of the scale-out topology failed."""


def start(stack: ExitStack, cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    handle = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    stack.callback(stop, proc)
    return proc


def nginx_config(work: Path, ports: list[int], lb_port: int) -> Path:
    """The repo's server block rendered for loopback, inside a minimal main config."""
    upstreams = "\n    ".join(f"server 127.0.0.1:{p};" for p in ports)
    # only our two variables, as the nginx image's NGINX_ENVSUBST_FILTER does; $host etc. stay
    server = string.Template(NGINX_TEMPLATE.read_text()).safe_substitute(
        LTP_UPSTREAMS=upstreams, LB_PORT=f"127.0.0.1:{lb_port}")
    (work / "ltp.conf").write_text(server)
    main = work / "nginx.conf"
    main.write_text(
        f"daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {work}/body;\n"
        f"  proxy_temp_path {work}/proxy;\n  include {work}/ltp.conf;\n}}\n")
    return main


def prometheus_config(work: Path, ports: list[int]) -> Path:
    """The repo's scrape config, with its jobs' service discovery replaced by loopback targets."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    job = config["scrape_configs"][0]
    job.pop("dns_sd_configs", None)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in ports]}]
    config["scrape_configs"] = [job]
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def served(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("ltp_requests_total{") and 'status="200"' in line)


def prometheus_instances(url: str, expr: str) -> set[str]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5)
    r.raise_for_status()
    return {s["metric"].get("instance", "") for s in r.json()["data"]["result"]}


def run(models_dir: Path, default_model: str, instances: int = 2, requests: int = 60,
        timeout_s: float = 120.0) -> dict:
    for tool in ("nginx", "prometheus"):
        if shutil.which(tool) is None:
            raise ScaleoutError(f"{tool} is not installed (apt-get install {tool})")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ltp-scaleout-")))
        ports = [free_port() for _ in range(instances)]
        env = os.environ | {"LTP_DEFAULT_MODEL": default_model, "LTP_THREADS": "1"}
        apis = [start(stack, [sys.executable, "-m", "app.cli", "serve", "--models-dir",
                              str(models_dir), "--host", "127.0.0.1", "--port", str(p)],
                      work / f"api-{p}.log", env) for p in ports]
        lb_port, prom_port = free_port(), free_port()
        nginx = start(stack, ["nginx", "-c", str(nginx_config(work, ports, lb_port)), "-p", str(work)],
                      work / "nginx.log")
        prom = start(stack, ["prometheus", f"--config.file={prometheus_config(work, ports)}",
                             f"--storage.tsdb.path={work / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], work / "prometheus.log")
        for proc, p in zip(apis, ports, strict=True):
            wait_http(f"http://127.0.0.1:{p}/readyz", timeout_s, proc)
        lb, prom_url = f"http://127.0.0.1:{lb_port}", f"http://127.0.0.1:{prom_port}"
        wait_http(f"{lb}/nginx-health", 30, nginx)
        wait_http(f"{prom_url}/-/ready", 60, prom)

        statuses = []
        with httpx.Client(base_url=lb, timeout=30) as client:
            for i in range(requests):
                r = client.post("/classify", json={"inputs": f"a good film, take {i}"})
                statuses.append(r.status_code)
        per_instance = {p: served(f"http://127.0.0.1:{p}") for p in ports}
        wanted = {f"127.0.0.1:{p}" for p in ports}
        series: dict[str, set[str]] = {}
        deadline = time.monotonic() + 60
        for expr in ("ltp_kept_tokens_count", "ltp_flops_saved_ratio_count", "ltp_flops_total"):
            while time.monotonic() < deadline:
                series[expr] = prometheus_instances(prom_url, expr)
                if series[expr] >= wanted:
                    break
                time.sleep(0.5)
        summary = {
            "instances": instances, "requests": requests,
            "answered_200": statuses.count(200),
            "served_per_instance": {str(p): n for p, n in per_instance.items()},
            "prometheus_series_instances": {k: sorted(v) for k, v in series.items()},
        }
        problems = []
        if statuses.count(200) != requests:
            problems.append(f"not every request was answered 200: {sorted(set(statuses))}")
        if not all(n > 0 for n in per_instance.values()):
            problems.append(f"an instance served nothing: {per_instance}")
        missing = {k: sorted(wanted - v) for k, v in series.items() if not v >= wanted}
        if missing:
            problems.append(f"Prometheus lacks series from: {missing}")
        summary["ok"] = not problems
        summary["problems"] = problems
        return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", default="models")
    p.add_argument("--default-model", default="sentiment-minilm-ltp")
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--requests", type=int, default=60)
    args = p.parse_args()
    summary = run(Path(args.models_dir), args.default_model, args.instances, args.requests)
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
