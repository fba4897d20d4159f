"""Process-wide settings that make the day loop fast, applied when a run starts, never at import
(a notebook that only imports panopticon keeps its process as it was)."""

from __future__ import annotations

import ctypes
import os

_done = False


def configure() -> None:
    """Apply the settings once per process (later calls do nothing); a value the user set in
    the environment wins. Called by :func:`panopticon.run` and :func:`panopticon.resume`
    before any compiled kernel runs.

    * ``GOMP_SPINCOUNT=10000``: Numba's OpenMP worker threads spin about 300,000 times before
      sleeping. On a machine where another process holds a core, each parallel kernel then
      waits for a descheduled spinner and a day can take 3x longer than on one thread; a short
      spin keeps the parallel speed-up on an idle machine and loses nothing on a busy one.
      OpenMP reads it when its runtime starts, at the first parallel kernel.
    * Freed memory is kept for reuse (glibc only): the day loop frees and allocates arrays of
      the same few megabytes every day. By default glibc serves blocks above 128 KiB with mmap
      and trims freed memory at once, so every fresh array costs a page fault per 4 KiB
      touched: about 7% of a day at 100,000 citizens. Serving blocks up to 32 MiB (glibc's
      most) from the heap and trimming only beyond 256 MiB of free memory removes them.
    """
    global _done
    if _done:
        return
    _done = True
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    if any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    trim_threshold, mmap_threshold = -1, -3  # mallopt parameters, from glibc's malloc.h
    mallopt(trim_threshold, 256 << 20)
    mallopt(mmap_threshold, 32 << 20)
