"""`--dtype auto`: the service times each precision the CPU runs natively and serves the
fastest whose recorded accuracy is within 0.5 pt of fp32; /models and /info say which, and why."""

import json

import pytest
from fastapi.testclient import TestClient

from app.loading import pick_runtime
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import settings_for
from tests.conftest import make_artifact


@pytest.fixture
def recorded(tmp_path):
    folder = tmp_path / "tiny-ltp"
    make_artifact(folder, ["neg", "pos"])
    meta = json.loads((folder / "ltp.json").read_text())
    meta.setdefault("eval", {})["precision"] = {
        "fp32": {"accuracy": 0.80}, "int8": {"accuracy": 0.798}, "bf16": {"accuracy": 0.70}}
    (folder / "ltp.json").write_text(json.dumps(meta))
    return folder


def fake_cpu(monkeypatch, flags: set[str]) -> None:
    monkeypatch.setattr("ltp.core.precision.read_cpu_features", lambda *a: flags)


def test_auto_times_the_accurate_native_precisions(recorded, monkeypatch):
    fake_cpu(monkeypatch, {"avx2", "avx512_bf16"})  # bf16 native, but 10 pt less accurate
    dtype, why, _ = pick_runtime(recorded, Settings())
    assert dtype in ("fp32", "int8")
    assert "fastest of fp32" in why and "int8" in why and "bf16" in why  # bf16 named as refused


def test_auto_without_recorded_accuracy_serves_fp32(tmp_path, monkeypatch):
    fake_cpu(monkeypatch, {"avx2", "amx_bf16", "amx_int8"})
    make_artifact(tmp_path / "plain", ["neg", "pos"])
    assert pick_runtime(tmp_path / "plain", Settings())[0] == "fp32"


def test_models_and_info_show_the_precision_and_why(recorded, monkeypatch):
    fake_cpu(monkeypatch, {"sse4_2"})  # no AVX2: int8 is not fast here, only fp32 qualifies
    with TestClient(create_app(settings_for(recorded.parent, dtype="auto"))) as c:
        (model,) = c.get("/models").json()["models"]
        assert model["dtype"] == "fp32" and "fp32" in model["dtype_reason"]
        assert c.get("/info").json()["model_dtype"] == "float32"
    with TestClient(create_app(settings_for(recorded.parent, dtype="int8"))) as c:
        (model,) = c.get("/models").json()["models"]
        assert (model["dtype"], model["dtype_reason"]) == ("int8", "set by --dtype")
        assert model["engine"] == "eager"
        assert c.post("/classify", json={"inputs": "a good film"}).status_code == 200


def test_the_chosen_precision_is_loaded_once(recorded, monkeypatch):
    import app.loading
    from app.settings import Settings
    from ltp.core.artifact import load_artifact

    fake_cpu(monkeypatch, {"avx2"})  # fp32 and int8 qualify: both are timed
    loads = []
    monkeypatch.setattr(app.loading, "load_artifact",
                        lambda *a, **kw: loads.append(kw.get("dtype")) or load_artifact(*a, **kw))
    settings = Settings(models_dir=recorded.parent, default_model=recorded.name, dtype="auto",
                        device="cpu")
    artifacts, precisions = app.loading.load_models(settings)
    assert sorted(loads) == ["fp32", "int8"], "each candidate loaded once, the chosen one reused"
    assert precisions[recorded.name][0] in ("fp32", "int8")


def test_auto_times_onnx_runtime_beside_eager_and_shows_the_engine(recorded, monkeypatch):
    fake_cpu(monkeypatch, {"avx2"})
    meta = json.loads((recorded / "ltp.json").read_text())
    meta["eval"]["precision"] |= {"ort-fp32": {"accuracy": 0.80}, "ort-int8": {"accuracy": 0.70}}
    (recorded / "ltp.json").write_text(json.dumps(meta))
    runtime = pick_runtime(recorded, Settings())
    assert "ort-fp32" in runtime.why and "fastest of" in runtime.why
    assert "ort-int8" in runtime.why.split("not accurate enough")[1], "10 pt below fp32: left out"
    with TestClient(create_app(settings_for(recorded.parent, engine="ort"))) as c:
        (model,) = c.get("/models").json()["models"]
        assert model["engine"] == "ort" and model["dtype"] == "fp32"
        assert c.get("/info").json()["engine"] == "ort"
        reply = c.post("/classify", json={"inputs": "a good film"})
        assert reply.status_code == 200


def test_on_a_gpu_auto_serves_varlen_in_bf16_where_the_card_has_it(monkeypatch):
    import torch

    from app.loading import gpu_runtime
    from app.settings import Settings

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert gpu_runtime(Settings())[::2] == ("bf16", "varlen")
    assert gpu_runtime(Settings(engine="padded"))[::2] == ("fp32", "padded")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert gpu_runtime(Settings())[::2] == ("fp32", "eager")


def test_an_engine_that_cannot_build_here_is_left_out_of_the_choice(recorded, monkeypatch, caplog):
    import shutil
    from collections import namedtuple

    fake_cpu(monkeypatch, {"avx2"})
    meta = json.loads((recorded / "ltp.json").read_text())
    meta["eval"]["precision"] |= {"ort-fp32": {"accuracy": 0.80}}
    (recorded / "ltp.json").write_text(json.dumps(meta))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30, 0))  # a full /tmp
    with caplog.at_level("WARNING", logger="app"):
        runtime = pick_runtime(recorded, Settings())
    assert runtime.engine == "eager" and "ort-fp32" not in runtime.why.split("fastest of")[1]
    assert "ort-fp32 left out of the choice" in caplog.text and "MiB free" in caplog.text
