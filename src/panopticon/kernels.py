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


_COARSE = 4096


@nb.njit(cache=True, nogil=True)
def _sum_and_median(x):
    n = x.shape[0]
    total = np.int64(0)
    lo = x[0]
    hi = x[0]
    for v in x:
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
    # coarse histogram -> the bucket(s) holding ranks (n-1)//2 and n//2 -> exact order statistic
    # bucket = (v - lo) >> shift, in uint64 (no overflow), a power-of-two width: no division
    base = np.uint64(lo)
    shift = np.uint64(0)
    while ((np.uint64(hi) - base) >> shift) >= _COARSE:
        shift += np.uint64(1)
    counts = np.zeros(_COARSE, dtype=np.int64)
    for v in x:
        counts[(np.uint64(v) - base) >> shift] += 1
    out = 0.0
    for rank in ((n - 1) // 2, n // 2):
        seen = 0
        b = 0
        while seen + counts[b] <= rank:
            seen += counts[b]
            b += 1
        bucket = np.empty(counts[b], dtype=np.int64)
        k = 0
        for v in x:
            if (np.uint64(v) - base) >> shift == b:
                bucket[k] = v
                k += 1
        bucket.sort()
        out += bucket[rank - seen]
    return total, out / 2.0


def sum_and_median(x: np.ndarray) -> tuple[int, float]:
    """Exact sum and median of an int64 array (equal to ``np.median`` for integers below
    2**53), in a few linear passes: a coarse histogram finds the bucket of the middle rank,
    and only that bucket is sorted."""
    if len(x) == 0:
        return 0, float("nan")
    total, median = _sum_and_median(x)
    return int(total), float(median)


@nb.njit(parallel=True, cache=True, nogil=True)
def tiers(scores, floors_desc):
    """Tier index per score (0 = highest): the first floor the score reaches, else the last tier.

    Args:
        scores: (n,) int64. floors_desc: (k-1,) int64 tier mins, strictly decreasing.
    """
    n = scores.shape[0]
    out = np.empty(n, dtype=np.uint8)
    for i in nb.prange(n):
        t = 0  # floors are strictly decreasing: the tier is the number of floors above the score
        for j in range(floors_desc.shape[0]):
            t += scores[i] < floors_desc[j]
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
