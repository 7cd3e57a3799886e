"""Process-level settings for CPU inference."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

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
