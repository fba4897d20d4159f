"""Behave and respond: each citizen's true events of the day, and rates that adapt.

Rates are float64 events per citizen-day, ``rates`` (n, T). Alongside them every stage keeps
``total`` (n,), each citizen's row sum, and ``cdf`` (3, n), the Poisson CDF of their daily
count at 0, 1 and 2: the kernels that change rates refresh both for the citizens they touch.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import poisson_count, uniform

MAX_EVENTS_PER_DAY = 60
"""Cap on one citizen's true events in a day."""
CHUNK = 1 << 12
"""Citizens per chunk of the event draw; chunks run in parallel, each writing its own events."""


@nb.njit(inline="always")
def refresh(rates, i, total, cdf):
    """Citizen i's total rate and the Poisson CDF of their daily count at 0, 1 and 2, with the
    exact float steps of :func:`poisson_count` so that both give the same draw.

    Args:
        rates: (n, T) float64 per day. i: the citizen. total: (n,) float64, cdf: (3, n)
            float64, written at i.
    """
    s = 0.0
    for t in range(rates.shape[1]):
        s += rates[i, t]
    total[i] = s
    p = np.exp(-s)
    cdf[0, i] = p
    p *= s / 1
    cdf[1, i] = cdf[0, i] + p
    p *= s / 2
    cdf[2, i] = cdf[1, i] + p


@nb.njit(parallel=True, cache=True, nogil=True)
def totals(rates, total, cdf):
    """Refresh every citizen's total rate and Poisson CDF at 0, 1, 2, in place.

    Args:
        rates: (n, T) float64 events per day. total: (n,) float64 out. cdf: (3, n) float64 out.
    """
    for i in nb.prange(rates.shape[0]):
        refresh(rates, i, total, cdf)


@nb.njit(inline="always")
def event_type(key, rates, total, i, k):
    """The type of citizen i's event k, in proportion to their rates (one uniform, counter
    ``(i << 8) + k + 1``).

    Args:
        key: uint64 stream key. rates: (n, T) float64. total: (n,) float64 row sums.

    Returns:
        int type index in [0, T).
    """
    x = uniform(key, (np.uint64(i) << np.uint64(8)) + np.uint64(k + 1)) * total[i]
    # The last type j with a nonzero rate whose cumulative rate before it is at or below x
    # (0 if none). Rates are non-negative, so this equals counting the cumulative rates at or
    # below x and stepping back over zero-rate types (where rounding can land). Branch-free:
    # with the stepping-back loop the kernel ran ~15% slower once loaded from Numba's cache.
    t = 0
    acc = 0.0
    for j in range(rates.shape[1] - 1):
        acc += rates[i, j]
        t = max(t, (j + 1) * ((acc <= x) & (rates[i, j + 1] != 0.0)))
    return t


@nb.njit(parallel=True, cache=True, nogil=True)
def draw_events(key, rates, total, cdf):
    """The day's true events in citizen order.

    Each citizen's count comes from one uniform (counter ``i << 8``), capped at
    :data:`MAX_EVENTS_PER_DAY`; their k-th event's type from another (:func:`event_type`).
    Two parallel passes over chunks of :data:`CHUNK` citizens: the first draws every
    citizen's count, so that the second writes each chunk's events straight to their final
    place (exact sizes, no copy).

    Args:
        key: uint64 stream key of the day. rates: (n, T) float64 events per day.
        total: (n,) float64 row sums. cdf: (3, n) float64 (see :func:`totals`).

    Returns:
        (citizen int32 (m,), event type int16 (m,), seq int32 (m,): the event's number among
        its citizen's events of the day).
    """
    n = rates.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    counts = np.empty(n, np.uint8)  # MAX_EVENTS_PER_DAY fits
    first_event = np.empty(n_chunks + 1, np.int64)
    first_event[0] = 0
    for c in nb.prange(n_chunks):
        first, last = c * CHUNK, min(n, (c + 1) * CHUNK)
        # elementwise, so the compiler can vectorise it: the count capped at 3 from the CDF
        m = 0
        for i in range(first, last):
            u = uniform(key, np.uint64(i) << np.uint64(8))
            k = (u >= cdf[0, i]) + (u >= cdf[1, i]) + (u >= cdf[2, i])
            counts[i] = k
            m += k
        # past the tabulated CDF (about 1% of citizens at the reference rates): the full
        # inversion with the same uniform. Listing them branch-free first is cheaper than a
        # branch per citizen.
        many = np.empty(last - first, np.int32)
        n_many = 0
        for i in range(first, last):
            many[n_many] = i
            n_many += counts[i] == 3
        for j in range(n_many):
            i = many[j]
            u = uniform(key, np.uint64(i) << np.uint64(8))
            k = poisson_count(u, cdf[0, i], total[i], MAX_EVENTS_PER_DAY)
            counts[i] = k
            m += k - 3
        first_event[c + 1] = m
    for c in range(n_chunks):
        first_event[c + 1] += first_event[c]
    m_all = first_event[n_chunks]
    citizen = np.empty(m_all, np.int32)
    event = np.empty(m_all, np.int16)
    seq = np.empty(m_all, np.int32)
    for c in nb.prange(n_chunks):
        first, last = c * CHUNK, min(n, (c + 1) * CHUNK)
        # the active citizens (about a third), listed branch-free: one branch per active
        # citizen below instead of an unpredictable one per citizen
        active = np.empty(last - first, np.int32)
        n_active = 0
        for i in range(first, last):
            active[n_active] = i
            n_active += counts[i] > 0
        e = first_event[c]
        for a in range(n_active):
            i = active[a]
            for k in range(counts[i]):
                citizen[e] = i
                event[e] = event_type(key, rates, total, i, k)
                seq[e] = k
                e += 1
    return citizen, event, seq


@nb.njit(parallel=True, cache=True, nogil=True)
def deter(rates, total, cdf, tier, tier_mask, event_mask, factor):
    """Deterrence: citizens in a masked tier multiply their masked events' rates by
    ``factor`` (rates, total and cdf in place).

    Args:
        rates: (n, T) float64 per day. total: (n,), cdf: (3, n) float64 (see :func:`totals`).
        tier: (n,) uint8 tier per citizen. tier_mask: (tiers,) bool. event_mask: (T,) bool.
        factor: float64 multiplier.
    """
    n, t_count = rates.shape
    for i in nb.prange(n):
        if not tier_mask[tier[i]]:
            continue
        for t in range(t_count):
            if event_mask[t]:
                rates[i, t] *= factor
        refresh(rates, i, total, cdf)


@nb.njit(parallel=True, cache=True, nogil=True)
def scale_rates(rates, total, cdf, mask, columns, factor, limit, base, base_column):
    """Multiply the rates ``columns`` of masked citizens by ``factor``, bounded by ``limit``
    times their base rate (a floor for factors below 1, a ceiling above), in place.

    Args:
        rates: (n, T) float64 per day. total: (n,), cdf: (3, n) float64 (see :func:`totals`).
        mask: (n,) bool, who responds. columns: int64 (c,) event types changed.
        factor: float64. limit: float64 multiple of the base rate (0: no bound).
        base: (n, C) float64 starting rates. base_column: (T,) int64 column of each event
            type in ``base`` (-1: not kept).
    """
    for i in nb.prange(rates.shape[0]):
        if not mask[i]:
            continue
        changed = False
        for t in columns:
            r = rates[i, t] * factor
            if limit > 0.0:  # a bound stops the move; it never moves a rate back
                bound = base[i, base_column[t]] * limit
                if factor < 1.0:
                    r = max(r, min(bound, rates[i, t]))
                else:
                    r = min(r, max(bound, rates[i, t]))
            changed |= r != rates[i, t]
            rates[i, t] = r
        if changed:  # at its limit (or a zero rate): no new CDF to work out
            refresh(rates, i, total, cdf)


@nb.njit(parallel=True, cache=True, nogil=True)
def set_rates(rates, total, cdf, masks, apply, value, base, base_column):
    """Rate responses: each applied event's rate is the last matching response's value, or
    the base rate where none matches (in place).

    Args:
        rates: (n, T) float64 per day. total: (n,), cdf: (3, n) float64 (see :func:`totals`).
        masks: (R, n) bool, whom each response holds for. apply: (R, T) bool, the event types
            each response sets. value: (R,) float64 events per day.
        base: (n, C) float64 starting rates. base_column: (T,) int64 column in ``base``.
    """
    n, t_count = rates.shape
    for i in nb.prange(n):
        changed = False
        for t in range(t_count):
            target = -1.0
            for r in range(masks.shape[0]):
                if apply[r, t]:
                    if target < 0.0:
                        target = base[i, base_column[t]]
                    if masks[r, i]:
                        target = value[r]
            if target >= 0.0 and rates[i, t] != target:
                rates[i, t] = target
                changed = True
        if changed:
            refresh(rates, i, total, cdf)
