"""The machine the process runs on: what its CPU is and can do (one reader of
``/proc/cpuinfo``), and the process-level settings for CPU inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str, cpuinfo: str | Path = CPUINFO) -> str | None:
    """The value of ``name`` for the first processor in ``/proc/cpuinfo`` (None if absent)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def read_cpu_features(cpuinfo: str | Path = CPUINFO) -> set[str]:
    """The CPU flags of the first processor in ``/proc/cpuinfo`` (empty if unreadable)."""
    flags = _cpuinfo_field("flags", cpuinfo)
    return set(flags.split()) if flags else set()


def cpu_name(cpuinfo: str | Path = CPUINFO) -> str:
    """The CPU's model name with its family and model numbers (``/proc/cpuinfo``: a virtual
    machine's name may be as bare as "AMD EPYC", which says neither the generation nor
    the instructions), else what ``platform`` knows."""
    name = _cpuinfo_field("model name", cpuinfo)
    if not name:
        return platform.processor() or platform.machine()
    family, model = _cpuinfo_field("cpu family", cpuinfo), _cpuinfo_field("model", cpuinfo)
    return f"{name} (family {family}, model {model})" if family and model else name


def device_name(device) -> str:
    """The GPU's name, or the CPU's model name."""
    if getattr(device, "type", device) == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    return cpu_name()


def describe() -> str:
    """One line for a card or a report: CPU, cores, torch and its threads."""
    import torch

    return (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator() -> bool:
    """Keep freed activation buffers in the heap instead of returning them to the OS.

    With glibc defaults every multi-megabyte activation is a fresh mmap, and the first write
    to each of its pages faults. Raising the mmap and trim thresholds lets buffers be reused;
    measured here it sped up both dense and pruned forwards (about 10 and 16 percent).
    One arena for every thread: with a heap per inference worker, each kept its own free
    buffers, and a second worker raised the service's resident memory after load from
    about 750 to 970-1,070 MiB; sharing one heap held it near 900 MiB at the same
    throughput. Returns False where glibc is not the allocator.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = all(libc.mallopt(param, value) == 1 for param, value in (
            (_M_MMAP_THRESHOLD, 32 << 20),  # glibc's largest allowed value
            (_M_TRIM_THRESHOLD, 1 << 30),
            (_M_TOP_PAD, 64 << 20),
            (_M_ARENA_MAX, 1),
        ))
    except (OSError, AttributeError):
        return False
    log.debug("allocator tuned: %s", ok)
    return ok
