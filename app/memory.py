"""Returning the heap's free memory to the OS while serving.

The allocator is tuned for speed (``ltp.core.machine.tune_allocator``): freed activation buffers
stay in the heap to be reused instead of being unmapped and faulted in again. Under serving,
batch shapes vary from one batch to the next, the free space fragments, and without a trim
glibc keeps every page it ever held: resident memory creeps up under steady load and never
comes back. ``malloc_trim(0)`` gives back the free pages anywhere in the heap (not only at its
top) in a few milliseconds; one call every few seconds keeps resident memory flat for a cost
well under one percent of a worker's time (figures in the README).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)


def _malloc_trim():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` at most once per ``interval_s``, from whichever worker asks."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._trim = _malloc_trim() if interval_s > 0 else None
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self.trims, self.seconds = 0, 0.0

    @property
    def enabled(self) -> bool:
        return self._trim is not None

    def maybe_trim(self) -> bool:
        """Trim if the interval has passed; True when this call trimmed."""
        if self._trim is None or time.monotonic() - self._last < self.interval_s:
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            start = time.monotonic()
            self._trim(0)
            self._last = time.monotonic()
            self.trims += 1
            self.seconds += self._last - start
            return True
        finally:
            self._lock.release()
