"""Which precision (and engine) to serve a model in, on this CPU.

A precision is a candidate when the CPU computes it natively: bf16 with AVX512-BF16 or
AMX-BF16 (without them bf16 matrix multiplies are emulated, several times slower than
fp32), int8 with VNNI or AMX-INT8 (fbgemm's fast int8 paths), or int8 through fbgemm's AVX2
kernels, which still beat fp32 on the encoder's linears (reports/performance.md, Precision). A candidate
is accurate enough when its recorded accuracy (``eval.precision`` in ``ltp.json``, written
by ``ltp.eval.precisions.record_precisions`` at build time) is within ``max_drop`` of fp32's. Among those, the
fastest measured wins (``timings``), or, with no timings, the first of int8, bf16, fp32.
Engines (``ltp.core.engines``) are chosen the same way, as engine and precision pairs: each
pair's accuracy is recorded apart (``ort-int8`` beside ``int8``), since ONNX Runtime's int8
kernels round differently from fbgemm's.
"""

from __future__ import annotations

import json
from pathlib import Path

from ltp.core.machine import read_cpu_features

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
PREFERENCE = ("int8", "bf16", "fp32")  # fastest first, where natively supported
MAX_DROP = 0.005  # the accuracy a precision may lose against fp32 and still be served (0.5 pt)


def native_precisions(features: set[str]) -> dict[str, str]:
    """Precisions this CPU runs fast, each with the reason."""
    out = {"fp32": "always available"}
    if bf16 := [f for f in BF16_FLAGS if f in features]:
        out["bf16"] = f"native bf16 ({', '.join(bf16)})"
    if int8 := [f for f in INT8_FLAGS if f in features]:
        out["int8"] = f"int8 dot products ({', '.join(int8)})"
    elif "avx2" in features:
        out["int8"] = "fbgemm int8 on AVX2 (no VNNI)"
    return out


def recorded_accuracy(artifact_dir: str | Path) -> dict[str, float]:
    """The headline figure per precision recorded in an artifact's ``ltp.json``
    (``eval.precision``): ``score`` (the head's accuracy, micro-F1 or Spearman), or, in
    artifacts written before heads, ``accuracy``."""
    meta = json.loads((Path(artifact_dir) / "ltp.json").read_text())
    table = meta.get("eval", {}).get("precision", {})
    return {name: float(row.get("score", row.get("accuracy"))) for name, row in table.items()
            if "score" in row or "accuracy" in row}


def runtime_key(engine: str, precision: str) -> str:
    """The name of an engine and precision pair in ``eval.precision`` and in reasons: the
    precision alone on the eager engine (``int8``), else ``engine-precision`` (``ort-int8``)."""
    return precision if engine == "eager" else f"{engine}-{precision}"


def split_key(key: str) -> tuple[str, str]:
    """``runtime_key``'s inverse: (engine, precision)."""
    engine, _, precision = key.rpartition("-")
    return engine or "eager", precision


def cpu_engines() -> tuple[str, ...]:
    """The engines that may serve on this CPU: eager always, ONNX Runtime where installed."""
    import importlib.util

    return ("eager", "ort") if importlib.util.find_spec("onnxruntime") else ("eager",)


def candidates(artifact_dir: str | Path, cpu_features: set[str] | None = None,
               engines: tuple[str, ...] | None = None, precisions: tuple[str, ...] | None = None,
               max_drop: float = MAX_DROP) -> tuple[dict[str, str], list[str]]:
    """The engine and precision pairs (``runtime_key``) that may serve ``artifact_dir`` here:
    a precision this CPU runs natively, on an engine that runs it, whose recorded accuracy
    is within ``max_drop`` of the eager fp32 forward's; each with why it runs fast. Also
    the native pairs left out (not accurate enough, or not recorded)."""
    from ltp.core.engines import engine_class

    native = native_precisions(read_cpu_features() if cpu_features is None else cpu_features)
    accuracy = recorded_accuracy(artifact_dir)
    pairs = {runtime_key(e, p): why for e in (engines or cpu_engines()) for p, why in native.items()
             if p in engine_class(e).precisions and (precisions is None or p in precisions)}
    if "fp32" not in accuracy:
        return ({"fp32": native["fp32"]} if "fp32" in pairs else {}), []
    ok = {k: why for k, why in pairs.items() if accuracy.get(k, -1.0) >= accuracy["fp32"] - max_drop}
    return ok, [k for k in pairs if k not in ok]


def choose_runtime(artifact_dir: str | Path, cpu_features: set[str] | None = None,
                   timings: dict[str, float] | None = None, max_drop: float = MAX_DROP,
                   engines: tuple[str, ...] | None = None,
                   precisions: tuple[str, ...] | None = None) -> tuple[str, str, str]:
    """The engine and precision to serve ``artifact_dir`` with, and why (one line).

    ``cpu_features``: CPU flags (default: this machine's); ``timings``: seconds of a
    warm-up per ``runtime_key`` (lower is better), only pairs present are considered;
    ``max_drop``: the largest accuracy loss against fp32 allowed (0.005 = 0.5 points);
    ``engines``, ``precisions``: the choice limited to these. Without recorded accuracies
    only fp32 on the eager engine is chosen.
    """
    ok, dropped = candidates(artifact_dir, cpu_features, engines, precisions, max_drop)
    accuracy = recorded_accuracy(artifact_dir)
    if "fp32" not in accuracy or not ok:
        return "eager", "fp32", "no accuracy per precision recorded in the artifact"
    if timings:
        timed = {k: timings[k] for k in ok if k in timings}
        best = min(timed, key=timed.get) if timed else next(iter(ok))
        how = f"fastest of {', '.join(f'{k} {timed[k] * 1e3:.1f} ms' for k in timed)}"
    else:
        best = next((k for p in PREFERENCE for k in ok if split_key(k)[1] == p), next(iter(ok)))
        how = "preferred"
    gap = (accuracy[best] - accuracy["fp32"]) * 100
    why = f"{best}: {ok[best]}; {how}; accuracy {gap:+.1f} pt vs fp32"
    if dropped:
        why += f"; not accurate enough or not recorded: {', '.join(dropped)}"
    return (*split_key(best), why)


def choose_dtype(artifact_dir: str | Path, cpu_features: set[str] | None = None,
                 timings: dict[str, float] | None = None, max_drop: float = MAX_DROP
                 ) -> tuple[str, str]:
    """``choose_runtime`` on the eager engine: the precision and why."""
    _, precision, why = choose_runtime(artifact_dir, cpu_features, timings, max_drop, ("eager",))
    return precision, why
