"""Tally: the day's counts and statistics for the metrics (sums, medians, by group)."""

from __future__ import annotations

import numba as nb
import numpy as np

_COARSE = 4096


@nb.njit(cache=True, nogil=True)
def sum_median_nonzero(x, y):
    """Exact sum and median of ``x``, and how many of ``y`` are nonzero, in three linear
    passes: a coarse histogram finds the bucket of the middle ranks, and only that bucket is
    sorted (the median equals ``np.median`` for integers below 2**53).

    Args:
        x: (n,) int64, n >= 1 (e.g. milli-point scores). y: (n,) numbers.

    Returns:
        (sum int64, median float64, nonzero int).
    """
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


@nb.njit(cache=True, nogil=True)
def count_codes(codes, k):
    """How often each code 0..k-1 occurs (like ``np.bincount`` without the int64 copy).

    Args:
        codes: (n,) unsigned or int codes below k (e.g. uint8 tiers). k: int.

    Returns:
        int64 (k,).
    """
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


@nb.njit(cache=True, nogil=True)
def sum_by_group(rates, cols, group, n_groups):
    """Sums of the rate columns ``cols`` by group, in citizen order.

    Args:
        rates: (n, T) float64 events per day. cols: int64 (c,) columns. group: (n,) group
            code. n_groups: G.

    Returns:
        float64 (c, G) events per day.
    """
    out = np.zeros((cols.shape[0], n_groups), dtype=np.float64)
    for i in range(rates.shape[0]):
        for c in range(cols.shape[0]):
            out[c, group[i]] += rates[i, cols[c]]
    return out


@nb.njit(cache=True, nogil=True)
def count_by_group(event, citizen, group, t_count, g_count):
    """Events by type and by their citizen's group.

    Args:
        event: int16 (m,) type. citizen: int32 (m,). group: (n,) group code.
        t_count, g_count: T and G.

    Returns:
        int64 (T, G).
    """
    out = np.zeros((t_count, g_count), dtype=np.int64)
    for e in range(event.shape[0]):
        out[event[e], group[citizen[e]]] += 1
    return out
