"""Small compiled helpers shared by the stages (prefix sums, integer statistics)."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def offsets(counts):
    """Exclusive prefix sum with a final total: int64 of shape (len(counts) + 1,)."""
    out = np.empty(counts.shape[0] + 1, dtype=np.int64)
    acc = np.int64(0)
    out[0] = 0
    for i in range(counts.shape[0]):
        acc += counts[i]
        out[i + 1] = acc
    return out


@nb.njit(cache=True, nogil=True)
def _min_max(x):
    lo = x[0]
    hi = x[0]
    for v in x:
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi


@nb.njit(cache=True, nogil=True)
def _median_by_counting(x, lo, hi):
    counts = np.zeros(hi - lo + 1, dtype=np.int64)
    for v in x:
        counts[v - lo] += 1
    n = x.shape[0]
    # the values of rank (n-1)//2 and n//2 (0-based); their mean is the median
    a_rank, b_rank = (n - 1) // 2, n // 2
    seen = 0
    a = b = lo
    found_a = False
    for k in range(counts.shape[0]):
        seen += counts[k]
        if not found_a and seen > a_rank:
            a = lo + k
            found_a = True
        if seen > b_rank:
            b = lo + k
            break
    return (a + b) / 2.0


def median_int(x: np.ndarray) -> float:
    """Median of an int64 array; counting sort when the range is small, else partition.

    Equals ``np.median(x)`` exactly for integers below 2**53.
    """
    if len(x) == 0:
        return float("nan")
    lo, hi = _min_max(x)
    if hi - lo <= 4 * len(x) + 1024:
        return float(_median_by_counting(x, lo, hi))
    return float(np.median(x))


@nb.njit(parallel=True, cache=True, nogil=True)
def tiers(scores, floors_desc):
    """Tier index per score (0 = highest): the first floor the score reaches, else the last tier.

    Args:
        scores: (n,) int64. floors_desc: (k-1,) int64 tier mins, strictly decreasing.
    """
    n = scores.shape[0]
    k = floors_desc.shape[0]
    out = np.empty(n, dtype=np.uint8)
    for i in nb.prange(n):
        t = k
        for j in range(k):
            if scores[i] >= floors_desc[j]:
                t = j
                break
        out[i] = t
    return out
