"""Opportunities: how many things each citizen tries today, and which kinds."""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import poisson_count, uniform


@nb.njit(parallel=True, cache=True, nogil=True)
def count_tries(key, p0, total, profile, counts):
    """Each citizen's number of tries today, Poisson(total) from one uniform (counter
    ``i << 8``), capped at 200.

    Args:
        key: uint64 stream key. p0: (P,) float64 exp(-total). total: (P,) float64 tries a
            day, per profile. profile: (n,) integer, each citizen's profile.
        counts: (n,) int64, written.
    """
    for i in nb.prange(profile.shape[0]):
        u = uniform(key, np.uint64(i) << np.uint64(8))
        p = profile[i]
        counts[i] = 0 if u < p0[p] else poisson_count(u, p0[p], total[p], 200)


@nb.njit(parallel=True, cache=True, nogil=True)
def fill_tries(key, rates, total, profile, counts, trying, first, citizen, kind, slot):
    """Each attempt's kind, in proportion to the citizen's rates (counter
    ``(i << 8) + j + 1`` for try j); parallel-safe: each citizen writes its own slots.

    Args:
        key: uint64 stream key. rates: (P, K) float64 tries a day by kind and total: (P,)
            float64 row sums, per profile. profile: (n,) integer, each citizen's profile.
            counts: (n,) int64 tries (:func:`count_tries`).
        trying: int64 (a,) the citizens with at least one try. first: int64 (n + 1,)
            offsets of ``counts``.
        citizen: int32 (m,), kind: int16 (m,), slot: int64 (m,) try number: written.
    """
    k_count = rates.shape[1]
    for a in nb.prange(trying.shape[0]):
        i = trying[a]
        p = profile[i]
        for j in range(counts[i]):
            x = uniform(key, (np.uint64(i) << np.uint64(8)) + np.uint64(j + 1)) * total[p]
            k = 0
            acc = rates[p, 0]
            while acc <= x and k < k_count - 1:
                k += 1
                acc += rates[p, k]
            while rates[p, k] == 0.0 and k > 0:  # rounding landed on a zero rate
                k -= 1
            citizen[first[i] + j] = i
            kind[first[i] + j] = k
            slot[first[i] + j] = j
