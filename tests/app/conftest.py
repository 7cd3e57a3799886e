"""Service fixtures: a models folder of tiny artifacts, an in-process client, a real server."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.server import Server, server_config
from app.settings import Settings
from loadtest.processes import free_port


def settings_for(models_dir, **overrides) -> Settings:
    base = dict(models_dir=models_dir, default_model="tiny-ltp", device="cpu", max_wait_ms=1.0)
    return Settings(**(base | overrides))


@pytest.fixture
def client(models_dir):
    with TestClient(create_app(settings_for(models_dir))) as c:
        yield c


class RunningServer:
    """uvicorn serving the real app on a loopback port, in a thread, as ``ltp serve`` does
    (``options`` override uvicorn's)."""

    def __init__(self, settings: Settings, **options) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(settings, **dict(host="127.0.0.1", port=self.port,
                                                log_level="warning", lifespan="on") | options)
        self.server = Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def server(models_dir):
    with RunningServer(settings_for(models_dir, max_batch_size=16)) as s:
        yield s
