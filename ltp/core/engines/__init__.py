"""Engines of the compact forward: one class per way of executing its kernels, behind the
seam of ``ltp.core.engines.base`` (names: ``ltp.core.config.ENGINES``)."""

from __future__ import annotations

from ltp.core.config import ENGINES
from ltp.core.engines.base import Engine, EngineError
from ltp.core.engines.eager import EagerEngine, PaddedEngine


def engine_class(name: str) -> type[Engine]:
    """The class of a named engine; ONNX Runtime's is imported only when asked for."""
    if name == "ort":
        from ltp.core.engines.ort import OrtEngine

        return OrtEngine
    if name == "varlen":
        from ltp.core.engines.varlen import VarlenEngine

        return VarlenEngine
    classes = {cls.name: cls for cls in (EagerEngine, PaddedEngine)}
    if name not in classes or name not in ENGINES:
        raise EngineError(f"engine must be one of {list(ENGINES)}, got {name!r}")
    return classes[name]


def make_engine(name: str, model, **options) -> Engine:
    """A named engine for ``model``; ``options`` go to its class (``precision``, ``threads``
    for ONNX Runtime)."""
    return engine_class(name)(model, **options)


__all__ = ["ENGINES", "Engine", "EngineError", "engine_class", "make_engine"]
