"""panopticon: a laboratory for social credit systems, run on synthetic societies.

The public API: :func:`load` a scenario (YAML path or preset name), :func:`run` it (in memory
or into a run store), :func:`open_run` a stored run, :func:`resume` an interrupted one.
"""

import ctypes
import os

# Numba's OpenMP worker threads spin about 300,000 times before sleeping. On a machine where
# another process holds a core, each parallel kernel then waits for a descheduled spinner and
# a day can take 3x longer than on one thread; a short spin keeps the parallel speed-up when
# the machine is idle and loses nothing when it is busy. A value the user set wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")


def _reuse_freed_memory() -> None:
    """Keep freed memory for reuse instead of giving it back to the system at once.

    The day loop frees and allocates arrays of the same few megabytes every day. By default
    glibc serves blocks above 128 KiB with mmap and trims freed memory right away, so every
    fresh array costs a page fault per 4 KiB touched: about 7% of a day at 100,000 citizens.
    Serving blocks up to 32 MiB (glibc's most) from the heap and trimming only beyond 256 MiB
    of free memory removes those faults. Glibc only; a value the user set wins.
    """
    if any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    trim_threshold, mmap_threshold = -1, -3  # mallopt parameters, from glibc's malloc.h
    mallopt(trim_threshold, 256 << 20)
    mallopt(mmap_threshold, 32 << 20)


_reuse_freed_memory()

from panopticon.api import RunResult, load, open_run, resume, run  # noqa: E402
from panopticon.scenario import ScenarioSpec, load_scenario  # noqa: E402

__all__ = ["RunResult", "ScenarioSpec", "load", "load_scenario", "open_run", "resume", "run"]
