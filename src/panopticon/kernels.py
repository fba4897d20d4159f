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
def _sum_median_nonzero(x, y):
    n = x.shape[0]
    total = np.int64(0)
    lo = x[0]
    hi = x[0]
    nonzero = 0
    for i in range(n):  # y rides along: one stream more costs less than a pass of its own
        v = x[i]
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
        nonzero += y[i] != 0
    # coarse histogram -> the bucket(s) holding ranks (n-1)//2 and n//2 -> exact order statistic
    # bucket = (v - lo) >> shift, in uint64 (no overflow), a power-of-two width: no division
    base = np.uint64(lo)
    shift = np.uint64(0)
    while ((np.uint64(hi) - base) >> shift) >= _COARSE:
        shift += np.uint64(1)
    counts = np.zeros(_COARSE, dtype=np.int64)
    for v in x:
        counts[(np.uint64(v) - base) >> shift] += 1
    # the buckets of the two middle ranks (the same one unless n is even and they straddle a
    # boundary; any bucket between them is empty), gathered in one more pass
    low_rank, high_rank = (n - 1) // 2, n // 2
    seen = 0
    b = 0
    while seen + counts[b] <= low_rank:
        seen += counts[b]
        b += 1
    low_bucket, below = b, seen
    while seen + counts[b] <= high_rank:
        seen += counts[b]
        b += 1
    size = counts[low_bucket] + (counts[b] if b != low_bucket else 0)
    first, width = np.uint64(low_bucket), np.uint64(b - low_bucket)
    middle = np.empty(size, dtype=np.int64)
    k = 0
    for v in x:
        if ((np.uint64(v) - base) >> shift) - first <= width:  # unsigned: one comparison
            middle[k] = v
            k += 1
    middle.sort()
    out = 0.0  # in float, as np.median averages them
    out += middle[low_rank - below]
    out += middle[high_rank - below]
    return total, out / 2.0, nonzero


def sum_and_median(x: np.ndarray) -> tuple[int, float]:
    """Exact sum and median of an int64 array (equal to ``np.median`` for integers below
    2**53), in three linear passes: a coarse histogram finds the bucket of the middle ranks,
    and only that bucket is sorted."""
    total, median, _ = sum_median_nonzero(x, x)
    return total, median


def sum_median_nonzero(x: np.ndarray, y: np.ndarray) -> tuple[int, float, int]:
    """:func:`sum_and_median` of ``x``, and how many of ``y`` (same length) are nonzero."""
    if len(y) != len(x):
        raise ValueError(f"sum_median_nonzero: {len(x)} values but {len(y)} flags")
    if len(x) == 0:
        return 0, float("nan"), 0
    total, median, nonzero = _sum_median_nonzero(x, y)
    return int(total), float(median), int(nonzero)


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
