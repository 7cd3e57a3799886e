"""Which precision to serve a model in, on this CPU.

A precision is a candidate when the CPU computes it natively: bf16 with AVX512-BF16 or
AMX-BF16 (without them bf16 matrix multiplies are emulated, several times slower than
fp32), int8 with VNNI or AMX-INT8 (fbgemm's fast int8 paths), or int8 through fbgemm's AVX2
kernels, which still beat fp32 on the encoder's linears (reports/performance.md, Precision). A candidate
is accurate enough when its recorded accuracy (``eval.precision`` in ``ltp.json``, written
by ``ltp.eval.precisions.record_precisions`` at build time) is within ``max_drop`` of fp32's. Among those, the
fastest measured wins (``timings``), or, with no timings, the first of int8, bf16, fp32.
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
    """Accuracy per precision recorded in an artifact's ``ltp.json`` (``eval.precision``)."""
    meta = json.loads((Path(artifact_dir) / "ltp.json").read_text())
    table = meta.get("eval", {}).get("precision", {})
    return {name: float(row["accuracy"]) for name, row in table.items() if "accuracy" in row}


def choose_dtype(artifact_dir: str | Path, cpu_features: set[str] | None = None,
                 timings: dict[str, float] | None = None, max_drop: float = MAX_DROP
                 ) -> tuple[str, str]:
    """The precision to serve ``artifact_dir`` in, and why (one line).

    ``cpu_features``: CPU flags (default: this machine's); ``timings``: seconds of a
    warm-up per precision (lower is better), only precisions present are considered;
    ``max_drop``: the largest accuracy loss against fp32 allowed (0.005 = 0.5 points).
    Without recorded accuracies only fp32 is chosen.
    """
    features = read_cpu_features() if cpu_features is None else cpu_features
    native = native_precisions(features)
    accuracy = recorded_accuracy(artifact_dir)
    if "fp32" not in accuracy:
        return "fp32", "no accuracy per precision recorded in the artifact"
    ok = {p: why for p, why in native.items()
          if p in accuracy and accuracy[p] >= accuracy["fp32"] - max_drop}
    dropped = [p for p in native if p not in ok]
    if timings:
        timed = {p: timings[p] for p in ok if p in timings}
        best = min(timed, key=timed.get) if timed else "fp32"
        how = f"fastest of {', '.join(f'{p} {timed[p] * 1e3:.1f} ms' for p in timed)}"
    else:
        best = next(p for p in PREFERENCE if p in ok)
        how = "preferred"
    gap = (accuracy[best] - accuracy["fp32"]) * 100
    why = f"{best}: {native[best]}; {how}; accuracy {gap:+.1f} pt vs fp32"
    if dropped:
        why += f"; not accurate enough or not recorded: {', '.join(dropped)}"
    return best, why
