"""Process-wide settings that make the day loop fast, applied when a run starts, never at import
(a notebook that only imports panopticon keeps its process as it was)."""

from __future__ import annotations

import ctypes
import logging
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
      most) from the heap and trimming only beyond 64 MiB of free memory removes them (a
      larger margin bought no speed and held 26 bytes a citizen more at 10 million).
    * Cached kernels compiled from a kernel source that has changed since are dropped
      (:func:`panopticon.kernels.refresh_cache`).
    """
    global _done
    if _done:
        return
    _done = True
    from panopticon import kernels

    kernels.refresh_cache()
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    if any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    trim_threshold, mmap_threshold = -1, -3  # mallopt parameters, from glibc's malloc.h
    mallopt(trim_threshold, 64 << 20)
    mallopt(mmap_threshold, 32 << 20)


# ------------------------------------------------------------------ compiled kernels
# Numba compiles each kernel for this machine's CPU the first time it runs (about a minute
# for all of them) and caches the machine code next to its module. `panopticon compile` (run
# by `make run` and `make test` after installing) does it ahead; a run that has to compile
# says so first, so a progress bar that does not move is never a mystery.

log = logging.getLogger("panopticon")
_warming = False  # warm_up says once what it does; its runs do not announce themselves


def kernels() -> list:
    """Every compiled kernel (see :func:`panopticon.kernels.dispatchers`)."""
    from panopticon import kernels as k

    return k.dispatchers()


def uncompiled_kernels() -> list[str]:
    """The kernels with no machine code cached for this CPU: the next run compiles them
    (see :func:`panopticon.kernels.uncompiled`)."""
    from panopticon import kernels as k

    return k.uncompiled()


def announce_compiling() -> None:
    """Log (logger ``panopticon``, warning) that this run compiles the kernels, when the
    machine has no code for a quarter of them or more: the minute-long first compile. A
    kernel or two that only unusual scenarios reach (or that only run inside other kernels,
    which Numba compiles along with them) take seconds and are not announced."""
    if _warming:
        return
    missing = uncompiled_kernels()
    if len(missing) * 4 >= len(kernels()):
        log.warning("compiling %d kernels for this machine: once, about a minute; "
                    "`panopticon compile` does it ahead", len(missing))


def warm_up() -> dict:
    """Compile every kernel by running each preset and example briefly in memory.

    Returns ``kernels`` (how many there are), ``compiled`` (how many had no cached code
    before), ``seconds`` and ``uncompiled`` (names still without cached code: kernels only
    unusual scenarios reach; the first such run compiles them)."""
    import time
    from pathlib import Path

    import panopticon as pc
    from panopticon.scenario import load_preset, load_scenario, preset_names

    global _warming
    configure()
    t0 = time.perf_counter()
    before = set(uncompiled_kernels())
    examples = Path(__file__).resolve().parents[2] / "examples"  # a source checkout only
    specs = [load_preset(name) for name in preset_names()]
    specs += [load_scenario(p) for p in sorted(examples.glob("*.yaml"))]
    _warming = True
    try:
        for spec in specs:
            pc.run(spec.with_run(citizens=1000, days=90))
    finally:
        _warming = False
    after = uncompiled_kernels()
    return {"kernels": len(kernels()), "compiled": len(before - set(after)),
            "seconds": round(time.perf_counter() - t0, 1), "uncompiled": after}
