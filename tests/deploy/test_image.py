"""The built image started for real (podman): ready through its own HEALTHCHECK, answering,
non-root, read-only root, the compose file's memory limit, SIGTERM drain.

Skipped where podman or the image is missing: CI does not build images (`make image` first,
then `make image-test`). LTP_IMAGE names the image (default ltp-serve:cpu, MODEL_SOURCE=copy);
ltp-serve:cpu-volume is checked with MODELS_DIR/IMAGE_MODEL mounted when it is built, and
ltp-serve:gpu (`make image IMAGE_TARGET=gpu`) when it is built.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.container import (
    Container,
    compose_memory_limit,
    podman,
    run_container,
    why_no_image,
)

IMAGE = os.environ.get("LTP_IMAGE", "ltp-serve:cpu")
VOLUME_IMAGE = os.environ.get("LTP_VOLUME_IMAGE", "ltp-serve:cpu-volume")
GPU_IMAGE = os.environ.get("LTP_GPU_IMAGE", "ltp-serve:gpu")
MODEL = os.environ.get("IMAGE_MODEL", "reviews-minilm-ltp")
MODELS_DIR = Path(os.environ.get("MODELS_DIR", "models")).resolve()
READY_TIMEOUT_S = 240
TEXT = "The coffee arrived fresh and tastes wonderful, I will order it again."

pytestmark = pytest.mark.skipif(why_no_image(IMAGE) is not None, reason=why_no_image(IMAGE) or "")

# a read-only root with a tmpfs where the service writes (the ort engine writes its ONNX graphs
# there: 256 MB is too small, and the int8 graph then fails to parse at start-up), and the
# compose file's limits
HARDENED = ("--read-only", "--tmpfs", "/tmp:rw,size=1g", "--memory", compose_memory_limit(),
            "--cpus", "2")


@pytest.fixture(scope="module")
def container():
    c = run_container(IMAGE, *HARDENED)
    try:
        c.ready_s = c.wait_healthy(READY_TIMEOUT_S)
        yield c
    finally:
        c.remove()


def test_ready_through_the_image_healthcheck(container: Container):
    assert container.inspect()["Config"]["Healthcheck"]["Test"][-1].count("/readyz")
    assert httpx.get(f"{container.url}/readyz", timeout=5).status_code == 200


def test_classify_answers_with_the_baked_model(container: Container):
    r = httpx.post(f"{container.url}/classify", json={"inputs": [TEXT, "Stale and bitter."]},
                   timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == MODEL and len(body["results"]) == 2
    assert 0 < body["results"][0]["kept_tokens"] <= body["results"][0]["input_tokens"]


def test_predict_answers_tei_shaped(container: Container):
    r = httpx.post(f"{container.url}/predict", json={"inputs": TEXT}, timeout=30)
    assert r.status_code == 200, r.text
    assert {"label", "score"} <= set(r.json()[0])


def test_metrics_export_the_ltp_series(container: Container):
    text = httpx.get(f"{container.url}/metrics", timeout=10).text
    assert "ltp_requests_total" in text or "ltp_" in text


def test_runs_as_a_user_that_is_not_root(container: Container):
    assert container.inspect()["Config"]["User"] == "10001"
    assert container.exec("id", "-u").stdout.strip() == "10001"


def test_root_filesystem_is_read_only_and_tmp_writable(container: Container):
    assert container.inspect()["HostConfig"]["ReadonlyRootfs"] is True
    assert container.exec("touch", "/app/probe").returncode != 0
    assert container.exec("touch", "/tmp/probe").returncode == 0


def test_memory_limit_of_the_compose_file_holds(container: Container):
    limit = container.inspect()["HostConfig"]["Memory"]
    assert limit == _bytes(compose_memory_limit())
    stats = podman("stats", "--no-stream", "--format", "{{.MemUsageBytes}}", container.id).stdout
    assert _bytes(stats.split("/")[0].strip()) < limit


def test_volume_image_serves_the_mounted_model():
    if why_no_image(VOLUME_IMAGE) or not (MODELS_DIR / MODEL / "ltp.json").is_file():
        pytest.skip(why_no_image(VOLUME_IMAGE) or f"no {MODELS_DIR / MODEL} to mount")
    # the service runs as uid 10001: the artifact's folder is mounted as `ltp build` wrote it
    # (save_artifact makes every file readable by all)
    model = (MODELS_DIR / MODEL).resolve()
    c = run_container(VOLUME_IMAGE, *HARDENED, "-v", f"{model}:/app/models/{MODEL}:ro")
    try:
        c.wait_healthy(READY_TIMEOUT_S)
        r = httpx.post(f"{c.url}/classify", json={"inputs": TEXT}, timeout=30)
        assert r.status_code == 200 and r.json()["model"] == MODEL
    finally:
        c.remove()


def _skip_without_gpu_image() -> None:
    if why := why_no_image(GPU_IMAGE):
        pytest.skip(why + " (`make image IMAGE_TARGET=gpu`)")


def test_gpu_image_carries_cuda_torch_with_its_libraries():
    """The gpu target runs PyPI's CUDA wheel on the plain base: CUDA and cuDNN load from the
    wheels inside the image, not from a CUDA base image."""
    _skip_without_gpu_image()
    probe = ("import json, torch; print(json.dumps([torch.version.cuda, "
             "torch.backends.cudnn.version(), torch.cuda.is_available()]))")
    out = podman("run", "--rm", "--entrypoint", "python", GPU_IMAGE, "-c", probe).stdout
    cuda, cudnn, available = json.loads(out.strip().splitlines()[-1])
    assert cuda and cudnn, (cuda, cudnn)
    assert available == bool(shutil.which("nvidia-smi")), "a GPU only where the host has one"


def test_gpu_image_without_a_gpu_says_so_and_exits():
    """Started where there is no GPU (device cuda by default), it stops at start-up with the
    reason, instead of serving on the CPU unasked or never becoming ready."""
    _skip_without_gpu_image()
    if shutil.which("nvidia-smi"):
        pytest.skip("this host has a GPU")
    c = run_container(GPU_IMAGE, *HARDENED)
    try:
        code = podman("wait", c.id, timeout=READY_TIMEOUT_S).stdout.strip()
        logs = c.logs()
        assert code == "1" and "Traceback" not in logs, (code, logs)
        assert logs.strip().splitlines()[-1].startswith(
            "ltp serve: device 'cuda' was asked for but no CUDA device is available"), logs
    finally:
        c.remove()


def test_gpu_image_serves_on_the_cpu_the_cpu_images_answers(container: Container):
    """With LTP_DEVICE=cpu the gpu image serves the same model as the cpu image, answer for
    answer (its torch is the CUDA build of the same release)."""
    _skip_without_gpu_image()
    c = run_container(GPU_IMAGE, *HARDENED, env={"LTP_DEVICE": "cpu"})
    try:
        c.wait_healthy(READY_TIMEOUT_S)
        body = {"inputs": [TEXT, "Stale and bitter."]}
        got = httpx.post(f"{c.url}/classify", json=body, timeout=30)
        want = httpx.post(f"{container.url}/classify", json=body, timeout=30)
        assert got.status_code == 200, got.text
        assert [r["label"] for r in got.json()["results"]] == [r["label"] for r in want.json()["results"]]
        assert got.json()["model"] == want.json()["model"] == MODEL
    finally:
        c.remove()


def test_sigterm_answers_what_was_accepted_then_exits(container: Container):
    """Last: it stops the module's container."""
    statuses: list[int | str] = []
    body = {"inputs": [TEXT * 3] * 16}

    def client() -> None:
        try:
            statuses.append(httpx.post(f"{container.url}/classify", json=body, timeout=60)
                            .status_code)
        except httpx.ConnectError:
            statuses.append("refused")  # after SIGTERM: never accepted, not lost
        except httpx.HTTPError as e:
            statuses.append(type(e).__name__)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    podman("kill", "--signal", "TERM", container.id)
    for t in threads:
        t.join(90)
    code = podman("wait", container.id, timeout=60).stdout.strip()
    assert all(s in (200, 429, "refused") for s in statuses), statuses
    # a clean drain exits 0 (not 143, 128 + SIGTERM, which reads as a failure)
    assert statuses.count(200) > 0 and code == "0", (statuses, code)
    assert "Finished server process" in container.logs()


def _bytes(size: str) -> int:
    """``2g``, ``512MiB``, ``1.5GB`` or plain bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    s = size.strip().lower().replace("ib", "").replace("b", "")
    return int(float(s[:-1]) * units[s[-1]]) if s[-1] in units else int(float(s))
