"""Accuracy of the compact forward per precision, measured on a split and recorded in the
artifact's ``ltp.json`` (``eval.precision``), where ``ltp.core.precision.choose_dtype``
reads it."""

from __future__ import annotations

import json
from pathlib import Path

from ltp.core.artifact import load_artifact
from ltp.core.engines import engine_class
from ltp.core.machine import read_cpu_features
from ltp.core.precision import cpu_engines, native_precisions, runtime_key, split_key
from ltp.eval.evaluate import evaluate


def measure_precisions(artifact_dir: str | Path, examples: list, precisions=("fp32", "bf16", "int8"),
                       batch_size: int = 64) -> dict[str, dict]:
    """The head's headline figure (accuracy, micro-F1, Spearman) of the compact forward in
    each precision on ``examples`` (a dev split), for ``ltp.json``'s ``eval.precision``:
    ``{"fp32": {"score": ...}, "ort-int8": ...}``; a name is a precision on the eager
    engine, or ``engine-precision`` (``ltp.core.precision.runtime_key``)."""
    out = {}
    for key in precisions:
        engine, precision = split_key(key)
        artifact = load_artifact(artifact_dir, dtype=precision, engine=engine)
        result = evaluate(artifact, examples, mode="compact", batch_size=batch_size)
        out[key] = precision_row(result)
    return out


def precision_row(result: dict) -> dict:
    """What ``eval.precision`` keeps of an evaluation: the headline figure (``score``, named
    by ``metric``; single-label models also keep it as ``accuracy``), examples, FLOPs."""
    row = {"metric": result["metric"], "score": result["score"], "examples": result["examples"],
           "relative_flops": result["relative_flops"]}
    return row | ({"accuracy": result["accuracy"]} if "accuracy" in result else {})


def record_precisions(artifact_dir: str | Path, examples: list, precisions=None,
                      features: set[str] | None = None, batch_size: int = 64,
                      known: dict[str, dict] | None = None) -> dict[str, dict]:
    """Measure the accuracy of each precision on ``examples`` (a dev split) and write it into
    ``ltp.json``'s ``eval.precision``, where ``choose_dtype`` reads it.

    ``precisions``: which to measure (default: those this CPU runs natively, see
    ``native_precisions``: an emulated precision would take hours on a whole split and is
    never served here anyway). ``known``: rows already measured on the same examples (the
    build's fp32 dev evaluation), taken as they are. Returns the table written.
    """
    native = native_precisions(read_cpu_features() if features is None else features)
    chosen = list(precisions) if precisions else [
        runtime_key(e, p) for e in cpu_engines() for p in ("fp32", "bf16", "int8")
        if p in native and p in engine_class(e).precisions]
    if "fp32" not in chosen:
        chosen.insert(0, "fp32")  # the reference every other precision is compared with
    known = {name: row for name, row in (known or {}).items() if name in chosen}
    table = known | measure_precisions(artifact_dir, examples,
                                       [p for p in chosen if p not in known], batch_size)
    table = {name: table[name] for name in chosen}
    for name, row in table.items():
        row["native"] = native.get(split_key(name)[1], "emulated on the measuring CPU")
    path = Path(artifact_dir) / "ltp.json"
    meta = json.loads(path.read_text())
    meta.setdefault("eval", {})["precision"] = table
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return table
