"""Array primitives more than one stage uses."""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import mix64


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


@nb.njit(cache=True, nogil=True)
def bucket_order(values, shift):
    """A stable counting sort by ``values >> shift``: O(m + buckets), not O(m log m).

    Args:
        values: (m,) non-negative integers (e.g. citizen ids). shift: bits dropped to make
            the bucket (e.g. 12 for blocks of 4,096 citizens).

    Returns:
        (order int64 (m,): positions by bucket, each bucket's in their original order;
        starts int64 (B + 1,): bucket b's positions are ``order[starts[b]:starts[b + 1]]``,
        B = largest bucket + 1, or 0 when m is 0).
    """
    m = values.shape[0]
    buckets = 0
    for e in range(m):
        buckets = max(buckets, np.int64(values[e] >> shift) + 1)
    starts = np.zeros(buckets + 1, dtype=np.int64)
    for e in range(m):
        starts[np.int64(values[e] >> shift) + 1] += 1
    for b in range(buckets):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    order = np.empty(m, dtype=np.int64)
    for e in range(m):
        b = np.int64(values[e] >> shift)
        order[fill[b]] = e
        fill[b] += 1
    return order, starts


@nb.njit(cache=True, nogil=True)
def distinct_rows(bits, most):
    """Each row's number among the distinct rows, numbered in order of first appearance;
    rows are the same when they are equal bit for bit (open addressing on a hash of the bits).

    Args:
        bits: (n, K) uint64, the rows' bits (a float64 table viewed as uint64).
        most: int, the most distinct rows wanted, at most 65536 (codes are uint16).

    Returns:
        (code uint16 (n,), first int64 (P,): the first row of each distinct row); with more
        than ``most`` distinct rows, an empty ``first`` (and ``code`` unfinished).
    """
    n, k_count = bits.shape
    size = 2
    while size < 2 * most:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, dtype=np.int64)  # a distinct row's number, -1: free
    first = np.empty(most, dtype=np.int64)
    code = np.empty(n, dtype=np.uint16)
    found = 0
    for i in range(n):
        h = np.uint64(k_count)
        for c in range(k_count):
            h = mix64(h ^ bits[i, c])
        s = h & mask
        while True:
            p = slots[s]
            if p < 0:
                if found == most:
                    return code, first[:0]
                slots[s] = found
                first[found] = i
                code[i] = found
                found += 1
                break
            j = first[p]
            same = True
            for c in range(k_count):
                if bits[i, c] != bits[j, c]:
                    same = False
                    break
            if same:
                code[i] = p
                break
            s = (s + np.uint64(1)) & mask
    return code, first[:found]
