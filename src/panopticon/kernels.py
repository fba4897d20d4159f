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
def _sum_min_max(x):
    lo = x[0]
    hi = x[0]
    total = np.int64(0)
    for v in x:
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
    return total, lo, hi


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


def sum_and_median(x: np.ndarray) -> tuple[int, float]:
    """Exact sum and median of an int64 array (median by counting when the range is small,
    else by partition; equals ``np.median`` for integers below 2**53)."""
    if len(x) == 0:
        return 0, float("nan")
    total, lo, hi = _sum_min_max(x)
    if hi - lo <= 4 * len(x) + 1024:
        return int(total), float(_median_by_counting(x, lo, hi))
    return int(total), float(np.median(x))


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


@nb.njit(cache=True, nogil=True)
def count_codes(codes, k):
    """How often each code 0..k-1 occurs (like ``np.bincount`` without the int64 copy)."""
    # four interleaved histograms: consecutive equal codes do not wait on each other's store
    lanes = np.zeros((4, k), dtype=np.int64)
    n = codes.shape[0]
    body = n - n % 4
    for j in range(0, body, 4):
        lanes[0, codes[j]] += 1
        lanes[1, codes[j + 1]] += 1
        lanes[2, codes[j + 2]] += 1
        lanes[3, codes[j + 3]] += 1
    for j in range(body, n):
        lanes[0, codes[j]] += 1
    return lanes.sum(axis=0)
