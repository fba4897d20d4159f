"""Behave and respond: each citizen's true events of the day, and rates that adapt.

Rates are events per citizen-day, (n, T), passed as ``rates``, a tuple of parts
``(dense, table, code, where)``: event type t's column is ``dense[:, where[t]]`` ((n, D),
float32 in a run; any float type here, as sums and products are worked out in float64) where
``where[t] >= 0``, else the fixed column ``-1 - where[t]`` of ``table`` (float64 (P, F), a
few distinct rows) at each citizen's row ``code`` ((n,) integer). Only dense columns change:
the kernels that change rates write ``dense``. A kernel unpacks the tuple once, outside its
loops, and hands the arrays to the inlined helpers (an array taken out of a tuple inside a
parallel loop costs a shared reference count per use: ten times slower). Alongside them
every stage keeps ``total`` (n,), each citizen's row sum, and ``p0`` (n,), the chance of no
event in a day, ``exp(-total)``: the kernels that change rates refresh both for the citizens they touch. The
Poisson CDF at 1 and 2 that the event draw compares with follows from these two by a
multiplication and an addition each (:func:`cdf12`), so it is worked out when drawn rather than
kept (16 bytes a citizen).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import poisson_count, uniform

MAX_EVENTS_PER_DAY = 60
"""Cap on one citizen's true events in a day."""
CHUNK = 1 << 12
"""Citizens per chunk of the event draw; chunks run in parallel, each writing its own events."""


@nb.njit(inline="always", cache=True)
def rate(dense, table, code, where, i, t):
    """Citizen i's rate of event type t.

    Args:
        dense, table, code, where: the rates' parts (see the module docstring). i: the
            citizen. t: the event type.

    Returns:
        float64 events per day.
    """
    w = where[t]
    if w >= 0:
        return dense[i, w]
    return table[code[i], -1 - w]


@nb.njit(inline="always")
def refresh(dense, table, code, where, i, total, p0):
    """Citizen i's total rate and chance of no event, ``exp(-total)``.

    Args:
        dense, table, code, where: the rates' parts, events per day. i: the citizen.
        total: (n,) float64, p0: (n,) float64, written at i.
    """
    s = 0.0
    for t in range(where.shape[0]):
        s += rate(dense, table, code, where, i, t)
    total[i] = s
    p0[i] = np.exp(-s)


@nb.njit(inline="always", cache=True)
def cdf12(c0, s):
    """The Poisson CDF at 1 and 2 from the one at 0 (``c0 = exp(-s)``) and the mean ``s``,
    with the exact float steps of :func:`poisson_count` so that both give the same draw.

    Returns:
        (CDF at 1, CDF at 2), float64.
    """
    p = c0 * (s / 1)
    c1 = c0 + p
    p *= s / 2
    return c1, c1 + p


@nb.njit(parallel=True, cache=True, nogil=True)
def totals(rates, total, p0):
    """Refresh every citizen's total rate and chance of no event, in place.

    Args:
        rates: (dense, table, code, where) events per day. total: (n,) float64 out. p0: (n,)
            float64 out.
    """
    dense, table, code, where = rates
    for i in nb.prange(dense.shape[0]):
        refresh(dense, table, code, where, i, total, p0)


@nb.njit(inline="always")
def event_type(key, dense, table, code, where, total, i, k, first):
    """The type of citizen i's event k, in proportion to their rates (one uniform, counter
    ``((first + i) << 8) + k + 1``).

    Args:
        key: uint64 stream key. dense, table, code, where: the rates' parts. total: (n,)
            float64 row sums. first: the citizen id of row 0 (a shard's first citizen).

    Returns:
        int type index in [0, T).
    """
    x = uniform(key, (np.uint64(first + i) << np.uint64(8)) + np.uint64(k + 1)) * total[i]
    # The last type j with a nonzero rate whose cumulative rate before it is at or below x
    # (0 if none). Rates are non-negative, so this equals counting the cumulative rates at or
    # below x and stepping back over zero-rate types (where rounding can land). Branch-free:
    # with the stepping-back loop the kernel ran ~15% slower once loaded from Numba's cache.
    t = 0
    acc = 0.0
    r = rate(dense, table, code, where, i, 0)
    for j in range(where.shape[0] - 1):
        acc += r
        r = rate(dense, table, code, where, i, j + 1)
        t = max(t, (j + 1) * ((acc <= x) & (r != 0.0)))
    return t


@nb.njit(parallel=True, cache=True, nogil=True)
def draw_events(key, rates, total, p0, first_id):
    """The day's true events in citizen order.

    Each citizen's count comes from one uniform (counter ``id << 8``, ``id = first_id + i``
    the citizen's id: rows may be a shard's citizens from ``first_id`` on), capped at
    :data:`MAX_EVENTS_PER_DAY`; their k-th event's type from another (:func:`event_type`).
    Two parallel passes over chunks of :data:`CHUNK` citizens: the first draws every
    citizen's count, so that the second writes each chunk's events straight to their final
    place (exact sizes, no copy).

    Args:
        key: uint64 stream key of the day. rates: (dense, table, code, where) events per day.
        total: (n,) float64 row sums. p0: (n,) float64 ``exp(-total)`` (see :func:`totals`).
        first_id: int64 id of the citizen in row 0.

    Returns:
        (citizen int32 (m,) row numbers, event type int16 (m,), seq int32 (m,): the event's number among
        its citizen's events of the day).
    """
    dense, table, code, where = rates
    n = dense.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    counts = np.empty(n, np.uint8)  # MAX_EVENTS_PER_DAY fits
    first_event = np.empty(n_chunks + 1, np.int64)
    first_event[0] = 0
    for c in nb.prange(n_chunks):
        first, last = c * CHUNK, min(n, (c + 1) * CHUNK)
        # elementwise, so the compiler can vectorise it: the count capped at 3 from the CDF
        m = 0
        for i in range(first, last):
            u = uniform(key, np.uint64(first_id + i) << np.uint64(8))
            c1, c2 = cdf12(p0[i], total[i])
            k = (u >= p0[i]) + (u >= c1) + (u >= c2)
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
            u = uniform(key, np.uint64(first_id + i) << np.uint64(8))
            k = poisson_count(u, p0[i], total[i], MAX_EVENTS_PER_DAY)
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
                event[e] = event_type(key, dense, table, code, where, total, i, k, first_id)
                seq[e] = k
                e += 1
    return citizen, event, seq


@nb.njit(parallel=True, cache=True, nogil=True)
def deter(rates, total, p0, tier, tier_mask, event_mask, factor):
    """Deterrence: citizens in a masked tier multiply their masked events' rates by
    ``factor`` (rates, total and p0 in place).

    Args:
        rates: (dense, table, code, where) per day, the masked events' columns dense.
        total: (n,), p0: (n,) float64 (see :func:`totals`). tier: (n,) uint8 tier per
        citizen. tier_mask: (tiers,) bool. event_mask: (T,) bool. factor: float64 multiplier.
    """
    dense, table, code, where = rates
    for i in nb.prange(dense.shape[0]):
        if not tier_mask[tier[i]]:
            continue
        for t in range(where.shape[0]):
            if event_mask[t]:
                dense[i, where[t]] *= factor
        refresh(dense, table, code, where, i, total, p0)


@nb.njit(parallel=True, cache=True, nogil=True)
def scale_by_code(rates, total, p0, code_of, ratio):
    """Multiply each citizen's rates by a factor of their code: rate of type t times
    ``ratio[t, code_of[i]]``, in place (citizens whose factors are all 1 are not touched).

    Args:
        rates: (dense, table, code, where) per day, every type with a factor other than 1
            dense. total: (n,), p0: (n,) float64 (see :func:`totals`).
        code_of: (n,) integer code of each citizen (e.g. their region). ratio: (T, C)
            float64 factors.
    """
    dense, table, code, where = rates
    for i in nb.prange(dense.shape[0]):
        c = code_of[i]
        changed = False
        for t in range(where.shape[0]):
            f = ratio[t, c]
            if f != 1.0:
                dense[i, where[t]] *= f
                changed = True
        if changed:
            refresh(dense, table, code, where, i, total, p0)


@nb.njit(parallel=True, cache=True, nogil=True)
def scale_rates(rates, total, p0, mask, columns, factor, limit, base, base_code, base_column):
    """Multiply the rates ``columns`` of masked citizens by ``factor``, bounded by ``limit``
    times their base rate (a floor for factors below 1, a ceiling above), in place.

    Args:
        rates: (dense, table, code, where) per day, the changed events' columns dense.
        total: (n,), p0: (n,) float64 (see :func:`totals`).
        mask: (n,) bool, who responds. columns: int64 (c,) event types changed.
        factor: float64. limit: float64 multiple of the base rate (0: no bound).
        base: (P, C) float64 starting rates by profile; base_code: (n,) integer, each
            citizen's profile. base_column: (T,) int64 column of each event type in ``base``
            (-1: not kept).
    """
    dense, table, code, where = rates
    for i in nb.prange(dense.shape[0]):
        if not mask[i]:
            continue
        changed = False
        for t in columns:
            now = dense[i, where[t]]
            r = now * factor
            if limit > 0.0:  # a bound stops the move; it never moves a rate back
                bound = base[base_code[i], base_column[t]] * limit
                if factor < 1.0:
                    r = max(r, min(bound, now))
                else:
                    r = min(r, max(bound, now))
            changed |= r != now
            dense[i, where[t]] = r
        if changed:  # at its limit (or a zero rate): no new CDF to work out
            refresh(dense, table, code, where, i, total, p0)


@nb.njit(parallel=True, cache=True, nogil=True)
def set_rates(rates, total, p0, masks, apply, value, base, base_code, base_column):
    """Rate responses: each applied event's rate is the last matching response's value, or
    the base rate where none matches (in place).

    Args:
        rates: (dense, table, code, where) per day, the set events' columns dense.
        total: (n,), p0: (n,) float64 (see :func:`totals`).
        masks: (R, n) bool, whom each response holds for. apply: (R, T) bool, the event types
            each response sets. value: (R,) float64 events per day.
        base: (P, C) float64 starting rates by profile; base_code: (n,) integer, each
            citizen's profile. base_column: (T,) int64 column in ``base``.
    """
    dense, table, code, where = rates
    for i in nb.prange(dense.shape[0]):
        changed = False
        for t in range(where.shape[0]):
            target = -1.0
            for r in range(masks.shape[0]):
                if apply[r, t]:
                    if target < 0.0:
                        target = base[base_code[i], base_column[t]]
                    if masks[r, i]:
                        target = value[r]
            if target >= 0.0 and dense[i, where[t]] != target:
                dense[i, where[t]] = target
                changed = True
        if changed:
            refresh(dense, table, code, where, i, total, p0)
