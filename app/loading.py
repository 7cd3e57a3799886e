"""What runs where: the models (each in its precision), the workers, the warm-up."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from app.engine.backend import Backend
from app.engine.engine import Engine
from app.settings import Settings
from ltp.core.artifact import LTP_JSON, Artifact, ArtifactError, load_artifact, resolve_device
from ltp.core.text import encode

log = logging.getLogger("app")


def load_models(settings: Settings) -> tuple[dict[str, Artifact], dict[str, tuple[str, str]]]:
    """Every LTP artifact in the models folder (or the named ones), on one device, each in
    its precision; returns the artifacts and, per model, its precision and why."""
    folder = Path(settings.models_dir)
    names = settings.models or sorted(p.name for p in folder.glob("*") if (p / LTP_JSON).is_file())
    if not names:
        raise ArtifactError(f"no LTP artifacts in {folder} (build one with `make model`)")
    if settings.default_model not in names:
        raise ArtifactError(f"default model {settings.default_model!r} is not among {names}")
    device = str(resolve_device(settings.device))
    artifacts, precisions = {}, {}
    for name in names:
        timed: dict[str, Artifact] = {}  # loaded while choosing the precision
        if settings.dtype != "auto":
            dtype, why = settings.dtype, "set by --dtype"
        elif device != "cpu":
            dtype, why = "fp32", f"auto on {device}: fp32"
        else:
            dtype, why = pick_precision(folder / name, timed)
        artifacts[name] = timed.get(dtype) or load_artifact(folder / name, device=device, dtype=dtype)
        precisions[name] = (dtype, why)
        log.info("%s runs in %s: %s", name, dtype, why)
    return artifacts, precisions


def pick_precision(path: Path, timed: dict[str, Artifact] | None = None) -> tuple[str, str]:
    """The fastest precision, by a timed warm-up, among those this CPU runs natively whose
    recorded accuracy is within ``MAX_DROP`` of fp32 (``ltp.core.precision.choose_dtype``).
    ``timed`` receives the artifacts loaded for the warm-up (CPU), so the chosen one is not
    loaded twice."""
    from ltp.core.precision import (
        MAX_DROP,
        choose_dtype,
        native_precisions,
        read_cpu_features,
        recorded_accuracy,
    )

    accuracy = recorded_accuracy(path)
    candidates = [p for p in native_precisions(read_cpu_features())
                  if p in accuracy and accuracy[p] >= accuracy.get("fp32", 1.0) - MAX_DROP]
    timings = {}
    if len(candidates) > 1:
        for dtype in candidates:
            artifact = load_artifact(path, dtype=dtype)
            if timed is not None:
                timed[dtype] = artifact
            encoded = encode(artifact.tokenizer, ["warm up " * 24] * 8,
                             max_length=artifact.meta.max_length)
            backend = Backend({"m": artifact})
            backend.forward("m", encoded)
            start = time.perf_counter()
            for _ in range(3):
                backend.forward("m", encoded)
            timings[dtype] = (time.perf_counter() - start) / 3
    return choose_dtype(path, timings=timings or None)


def worker_plan(workers: int, threads: int, device: str, cores: int) -> tuple[int, int]:
    """(inference workers, torch threads each); 0 in the settings means auto.

    On the CPU, two workers of half the cores each by default: one worker's batch computes
    while the other runs its Python between operators, where a single worker of all the
    cores leaves them idle. On a GPU one worker keeps the device busy.
    """
    if workers <= 0:
        workers = 1 if device != "cpu" or cores < 2 else 2
    if threads <= 0:
        threads = max(1, cores // workers)
    return workers, threads


def warm_up(engine: Engine) -> None:
    """Real forward passes of every model before the service says ready; their timings seed
    the cost model that admission uses, so the first estimates are this machine's."""
    backend, policy = engine.backend, engine.policy
    for name, artifact in backend.artifacts.items():
        length = max(8, artifact.meta.max_length // 2)
        for count in (1, 8, 1, 8):
            texts = ["warm up " * (length // 2)] * count
            encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length)
            start = time.perf_counter()
            backend.forward(name, encoded)
            policy.costs[name].observe(sum(e.num_tokens for e in encoded),
                                       time.perf_counter() - start)
