"""Podman from the tests: the project's settings (deploy/podman), containers started on loopback
ports and removed by id."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PODMAN_STORE = Path(os.environ.get("PODMAN_STORE", "/work/podman-store"))


def podman_env() -> dict[str, str]:
    """The environment deploy/podman/env.sh sets: config files of this project, not /etc."""
    env = dict(os.environ, CONTAINERS_CONF=str(REPO / "deploy/podman/containers.conf"))
    storage = PODMAN_STORE / "storage.conf"
    if storage.is_file():
        env["CONTAINERS_STORAGE_CONF"] = str(storage)
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          check=check, timeout=timeout)


def why_no_image(image: str) -> str | None:
    """None when ``image`` can be started here, else the reason it cannot."""
    if shutil.which("podman") is None:
        return "podman is not installed (the image tests start the built image with podman)"
    if podman("image", "exists", image, check=False).returncode != 0:
        return f"image {image} is not built here (`make image`; CI does not build images)"
    return None


def compose_memory_limit() -> str:
    """The api service's memory limit in docker-compose.yml, e.g. ``2g``."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return compose["services"]["api"]["deploy"]["resources"]["limits"]["memory"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Container:
    id: str
    url: str

    def inspect(self) -> dict:
        return json.loads(podman("inspect", self.id).stdout)[0]

    def exec(self, *cmd: str) -> subprocess.CompletedProcess:
        return podman("exec", self.id, *cmd, check=False)

    def wait_healthy(self, timeout_s: float) -> float:
        """Seconds until the image's own HEALTHCHECK passes. Podman without systemd runs no
        health timer, so the check is run here, as often as the timer would."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if podman("healthcheck", "run", self.id, check=False).returncode == 0:
                return time.monotonic() - start
            if not self.inspect()["State"]["Running"]:
                raise RuntimeError(f"container exited:\n{self.logs()}")
            time.sleep(1)
        raise TimeoutError(f"not healthy after {timeout_s} s:\n{self.logs()}")

    def logs(self) -> str:
        out = podman("logs", self.id, check=False)
        return (out.stdout + out.stderr)[-4000:]

    def remove(self) -> None:
        podman("rm", "--force", "--time", "5", self.id, check=False)


def run_container(image: str, *options: str, env: dict[str, str] | None = None) -> Container:
    """``image`` started detached on a loopback port, with ``--init`` so SIGTERM reaches the
    server."""
    port = free_port()
    env_args = [a for k, v in (env or {}).items() for a in ("-e", f"{k}={v}")]
    cid = podman("run", "-d", "--init", "-p", f"127.0.0.1:{port}:8000", *env_args, *options,
                 image).stdout.strip()
    return Container(cid, f"http://127.0.0.1:{port}")
