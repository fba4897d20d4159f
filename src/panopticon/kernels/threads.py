"""How many threads the parallel kernels use (a backend-wide setting, not a kernel)."""

from __future__ import annotations

import numba


def available() -> int:
    """The most threads the parallel kernels can use in this process."""
    return numba.config.NUMBA_NUM_THREADS


def current() -> int:
    """The threads the parallel kernels use now."""
    return numba.get_num_threads()


def use(n: int) -> None:
    """Run the parallel kernels on ``n`` threads (clamped to 1 .. :func:`available`)."""
    numba.set_num_threads(max(1, min(n, available())))
