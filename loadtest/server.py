"""The one way the load tests start a server and stop it: `ltp serve` (or a baseline: the
naive pipeline app, the bare refusing app, nginx refusing everything) as a child process on
a free loopback port, its output in a log file, handed over once it answers its readiness
route."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from loadtest.processes import free_port, stop, wait_http

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    """A started server process and its URL; a context manager that stops it on exit."""

    proc: subprocess.Popen
    url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM (the service drains its queue), then a kill if it takes longer."""
        stop(self.proc, timeout_s)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop(timeout_s=60)


def start(cmd: list[str], port: int, log: Path, *, env: dict[str, str] | None = None,
          cwd: str | Path | None = None, ready: str = "/readyz", timeout_s: float = 300) -> Server:
    """``cmd`` (which listens on 127.0.0.1:``port``), once ``ready`` answers 200; killed
    when it exits first or does not answer within ``timeout_s``."""
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, cwd=cwd or REPO, env=os.environ | (env or {}), stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}{ready}", timeout_s, proc)
    except RuntimeError:
        proc.kill()
        proc.wait()
        raise
    return Server(proc, url)


def ltp_serve(log: Path, models_dir: str | Path, models: list[str], *, default: str | None = None,
              flags: list[str] | tuple[str, ...] = (), server_dir: str | Path | None = None) -> Server:
    """`ltp serve` of ``models`` (the first the default unless ``default``) from
    ``models_dir``, with extra ``flags``; ``server_dir``: the checkout to run it from
    (another version of the service, for a before/after comparison)."""
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "serve", "--models-dir", str(Path(models_dir).resolve()),
           "--default-model", default or models[0], "--host", "127.0.0.1", "--port", str(port),
           *flags]
    return start(cmd, port, log, env={"LTP_MODELS": json.dumps(models)}, cwd=server_dir)


def baseline_app(log: Path, name: str, env: dict[str, str] | None = None,
                 timeout_s: float = 180) -> Server:
    """``loadtest.baselines.<name>:app`` on uvicorn (the server ``ltp serve`` runs), once its
    ``/healthz`` answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"loadtest.baselines.{name}:app", "--host",
           "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return start(cmd, port, log, env=env, ready="/healthz", timeout_s=timeout_s)


def nginx_refusal(work: Path) -> Server | None:
    """nginx refusing every request (``loadtest/baselines/refuse_nginx.conf``), its files in
    ``work``; None where nginx is not installed."""
    binary = shutil.which("nginx")
    if binary is None:
        return None
    work = work.resolve()  # nginx reads the configuration's paths from its prefix
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    template = (REPO / "loadtest" / "baselines" / "refuse_nginx.conf").read_text()
    config = work / "nginx.conf"
    config.write_text(template.replace("{work}", str(work)).replace("{port}", str(port)))
    return start([binary, "-c", str(config), "-p", str(work)], port, work / "nginx.log",
                 ready="/healthz", timeout_s=30)


def pipeline_app(log: Path, model_dir: str | Path) -> Server:
    """The naive baseline (``loadtest.baselines.pipeline_app``) serving ``model_dir``."""
    return baseline_app(log, "pipeline_app", {"LTP_BASELINE_MODEL": str(Path(model_dir).resolve())})


def run_below_clients(server: Server, levels: int = 10) -> None:
    """Every thread of the service, and of the processes it started (nginx's worker),
    ``levels`` nice levels below this process (its clients), so the clients' own scheduling
    delay on the shared cores does not show as the service's latency: on a real deployment
    the clients run on other machines. Only lowers the service's priority (no privilege
    needed); threads it starts later inherit it. Each thread goes ``levels`` below its own
    value, so any order the service sets between its own threads holds."""
    floor = os.getpriority(os.PRIO_PROCESS, 0)
    for tid in _threads(server.pid):
        try:
            own = max(floor, os.getpriority(os.PRIO_PROCESS, tid))
            os.setpriority(os.PRIO_PROCESS, tid, min(19, own + levels))
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def _threads(pid: int) -> list[int]:
    """The thread ids of ``pid`` and of its descendants (``/proc/.../children``)."""
    tids = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            tids.append(int(task.name))
            children = (task / "children").read_text().split()
            tids += [t for child in children for t in _threads(int(child))]
    except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
        pass
    return tids
