"""What runs where: the models (each in its precision), the workers, the warm-up."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import NamedTuple

from app.engine.backend import Backend
from app.engine.engine import Engine
from app.settings import LARGE_BATCH, SMALL_BATCH, Settings
from ltp.core.artifact import LTP_JSON, Artifact, ArtifactError, load_artifact, resolve_device
from ltp.core.engines import EngineError
from ltp.core.precision import candidates, choose_runtime, runtime_key, split_key
from ltp.core.text import encode

log = logging.getLogger("app")


class Runtime(NamedTuple):
    """How one model runs: its precision, why, and the engine of its compact forward."""

    dtype: str
    why: str
    engine: str = "eager"


def load_models(settings: Settings, threads: int | None = None
                ) -> tuple[dict[str, Artifact], dict[str, Runtime]]:
    """Every LTP artifact in the models folder (or the named ones), on one device, each in
    its engine and precision; returns the artifacts and, per model, how it runs and why.
    ``threads``: each ONNX Runtime session's (default: torch's)."""
    folder = Path(settings.models_dir)
    names = settings.models or sorted(p.name for p in folder.glob("*") if (p / LTP_JSON).is_file())
    if not names:
        raise ArtifactError(f"no LTP artifacts in {folder} (build one with `make model`)")
    if settings.default_model not in names:
        raise ArtifactError(f"default model {settings.default_model!r} is not among {names}")
    device = str(resolve_device(settings.device))
    artifacts, runtimes = {}, {}
    for name in names:
        timed: dict[str, Artifact] = {}  # loaded while choosing, by runtime key
        if settings.dtype != "auto":  # a precision asked for is served as asked
            engine = "eager" if settings.engine == "auto" else settings.engine
            chosen = Runtime(settings.dtype, "set by --dtype", engine)
        elif device != "cpu":
            chosen = gpu_runtime(settings)
        else:
            chosen = pick_runtime(folder / name, settings, timed, threads)
        key = runtime_key(chosen.engine, chosen.dtype)
        artifacts[name] = timed.get(key) or _load(folder / name, device, chosen, threads)
        runtimes[name] = chosen
        log.info("%s runs in %s on the %s engine: %s", name, chosen.dtype, chosen.engine, chosen.why)
    return artifacts, runtimes


def _load(path: Path, device: str, runtime: Runtime, threads: int | None) -> Artifact:
    return load_artifact(path, device=device, dtype=runtime.dtype, engine=runtime.engine,
                         threads=threads)


def gpu_runtime(settings: Settings) -> Runtime:
    """On a GPU: FlashAttention's varlen engine in bf16 where the card computes bf16 (fp32
    scores and thresholds whatever the weights), else eager fp32; a named engine is kept."""
    import torch

    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    engine = settings.engine if settings.engine != "auto" else "varlen" if bf16 else "eager"
    dtype = "bf16" if bf16 and engine == "varlen" else "fp32"
    return Runtime(dtype, f"auto on the GPU: {engine} in {dtype}", engine)


def pick_runtime(path: Path, settings: Settings, timed: dict[str, Artifact] | None = None,
                 threads: int | None = None) -> Runtime:
    """The fastest engine and precision, by a timed warm-up (one input, then eight), among
    the pairs this CPU runs natively whose recorded accuracy is within ``MAX_DROP`` of fp32
    (``ltp.core.precision.candidates``), limited to the engine the settings name.
    ``timed`` receives the artifacts loaded for the warm-up, so the chosen one is not
    loaded twice."""
    engines = None if settings.engine == "auto" else (settings.engine,)
    ok, _ = candidates(path, engines=engines)
    timings = {}
    if len(ok) > 1:
        for key in ok:
            engine, dtype = split_key(key)
            try:
                artifact = _load(path, "cpu", Runtime(dtype, "", engine), threads)
            except EngineError as error:  # this engine cannot run here: the others are timed
                log.warning("%s: %s left out of the choice: %s", path.name, key, error)
                continue
            if timed is not None:
                timed[key] = artifact
            backend = Backend({"m": artifact})
            one, eight = (encode(artifact.tokenizer, ["warm up " * 24] * n,
                                 max_length=artifact.meta.max_length) for n in (1, 8))
            backend.forward("m", eight)
            start = time.perf_counter()
            for _ in range(3):
                backend.forward("m", one)
                backend.forward("m", eight)
            timings[key] = (time.perf_counter() - start) / 3
    engine, dtype, why = choose_runtime(path, timings=timings or None, engines=engines)
    return Runtime(dtype, why, engine)


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


def batch_size(artifacts: dict) -> int:
    """``max_batch_size``'s auto value for the loaded models: ``SMALL_BATCH`` where every
    model's engine runs one input per call (a bigger batch then buys no speed; measured in
    docs/service.md), else ``LARGE_BATCH``."""
    if artifacts and all(a.model.engine.one_input_per_call for a in artifacts.values()):
        return SMALL_BATCH
    return LARGE_BATCH


def warm_up(engine: Engine) -> None:
    """Real forward passes of every model before the service says ready; their timings seed
    the cost model that admission uses, so the first estimates are this machine's."""
    backend, policy = engine.backend, engine.policy
    for name, artifact in backend.artifacts.items():
        length = max(8, artifact.meta.max_length // 2)
        for count in (1, 8, 1, 8):
            texts = ["warm up " * (length // 2)] * count
            start = time.perf_counter()  # tokenising is the worker's too
            encoded = encode(artifact.tokenizer, texts, max_length=artifact.meta.max_length,
                             release_gil=True)
            backend.forward(name, encoded)
            policy.costs[name].observe(sum(e.num_tokens for e in encoded),
                                       time.perf_counter() - start)
