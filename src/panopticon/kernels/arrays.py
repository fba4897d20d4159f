"""Array primitives more than one stage uses."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def offsets(counts):
    """Exclusive prefix sum with a final total.

    Args:
        counts: (n,) integer counts (e.g. draws per citizen or per block).

    Returns:
        int64 (n + 1,): ``out[i]`` is the sum of ``counts[:i]``; ``out[n]`` the total.
    """
    out = np.empty(counts.shape[0] + 1, dtype=np.int64)
    acc = np.int64(0)
    out[0] = 0
    for i in range(counts.shape[0]):
        acc += counts[i]
        out[i + 1] = acc
    return out
