"""Score, list, classify: policy rules turn observations into integer score changes, list
entries and tiers; association pulls scores toward ties; peer ratings.

Scores are int64 milli-points (1 point = 1000), weights int64 parts per million. Ledger
columns come back as arrays: citizen int32, rule int16, delta int64 milli-points,
observation int64 (``day << 32`` + index in the day; -1: none), truth int8 (1 true, 0 false,
-1 not from an observation).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import poisson_count, uniform
from panopticon.kernels.ties import tie_sum

PPM = 1_000_000
"""Weights are in parts per million."""
_SMALL_DIFF = 2**62 // (4 * PPM)
"""Below this |sum of gaps| (milli-points) the pull's numerator fits int64 as it is."""
NEVER = 1_000_000_000
"""``days_since`` of an event never observed, and the end day of an open-ended listing."""
ENTERED, EXTENDED, LEFT, EXPIRED, RESTORED = range(5)
"""Codes of list changes (``policy.runtime.LIST_CHANGES``)."""


@nb.njit(parallel=True, cache=True, nogil=True)
def tiers(scores, floors_desc):
    """Tier index per score (0 = highest): the first floor the score reaches, else the last tier.

    Args:
        scores: (n,) int64 milli-points. floors_desc: (k-1,) int64 tier mins, strictly
            decreasing.

    Returns:
        uint8 (n,) in [0, k).
    """
    n = scores.shape[0]
    out = np.empty(n, dtype=np.uint8)
    for i in nb.prange(n):
        t = 0  # floors are strictly decreasing: the tier is the number of floors above the score
        for j in range(floors_desc.shape[0]):
            t += scores[i] < floors_desc[j]
        out[i] = t
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def pull(indptr, indices, scores, weight_ppm, low, high, out, first):
    """Association: each citizen's change toward the mean score of their ties,
    ``weight * (mean - score)`` rounded half up, clamped to the bounds (exact int64).

    Args:
        indptr, indices: the tie layer's rows for citizens ``first`` to ``first + m - 1``
            (a shard's, or everyone's with ``first`` 0; see :mod:`panopticon.kernels.ties`).
        scores: (n,) int64 milli-points of every citizen, read only. weight_ppm: int64
            weight in ppm. low, high: int64 score bounds. out: (m,) int64 milli-points,
            written (0 without ties). first: int64.
    """
    for i in nb.prange(out.shape[0]):
        d = indptr[i + 1] - indptr[i]
        if d == 0:
            out[i] = 0
            continue
        s = tie_sum(indptr, indices, scores, i, np.int64(0))
        own = scores[first + i]
        # weight * (mean - score) = w * diff / (PPM * d), rounded half up, in int64 without
        # overflow: diff = q*d + r and w*q = a1*PPM + a0 split the product into small parts.
        diff = s - d * own
        if -_SMALL_DIFF <= diff <= _SMALL_DIFF:  # the usual case: one division, no overflow
            delta = (2 * weight_ppm * diff + PPM * d) // (2 * PPM * d)
        else:
            q = diff // d
            r = diff - q * d
            a = weight_ppm * q
            a1 = a // PPM
            a0 = a - a1 * PPM
            delta = a1 + (2 * (a0 * d + weight_ppm * r) + PPM * d) // (2 * PPM * d)
        new = min(max(own + delta, low), high)
        out[i] = new - own


@nb.njit(cache=True, nogil=True)
def apply_changes(delta, scores, rule):
    """Add the nonzero deltas to the scores (in place); their ledger columns, in citizen order.

    Args:
        delta: (n,) int64 milli-points. scores: (n,) int64 milli-points. rule: int rule id.

    Returns:
        (citizen int32, rule int16, delta int64, observation int64 = -1, truth int8 = -1),
        each (m,) for the m nonzero deltas.
    """
    m = 0
    for i in range(delta.shape[0]):
        m += delta[i] != 0
    citizen = np.empty(m, np.int32)
    out = np.empty(m, np.int64)
    k = 0
    for i in range(delta.shape[0]):
        if delta[i] != 0:
            scores[i] += delta[i]
            citizen[k] = i
            out[k] = delta[i]
            k += 1
    return (citizen, np.full(m, rule, np.int16), out, np.full(m, -1, np.int64),
            np.full(m, -1, np.int8))


@nb.njit(cache=True, nogil=True)
def apply_rules(day, key, obs_pos, obs_citizen, obs_event, obs_true, table_first, table_order,
                plain, delta, lo, hi, from_day, to_day, where_row, where, any_exempt, exempt, cap,
                cap_days, cap_row, cap_used, cap_period, expires, override_tier, override_days,
                tier_cap, tier_cap_until, low, high, scores, false_points, out_citizen, out_rule,
                out_delta, out_obs, out_truth, out_due):
    """The event rules, observation by observation in order: points (fixed, or whole points
    drawn in [lo, hi] at counter ``(pos << 8) + rule``), active windows, where masks, caps per
    period and grade overrides; scores and the policy's memory change in place.

    Args:
        day: int. key: uint64 stream key. obs_pos int64: each observation's position in the
            day's list (its run-wide id is ``day << 32`` plus that): all of them, or a shard's.
            obs_citizen int32, obs_event int16, obs_true bool: the observations (o,).
        table_first: int64 (T + 1,), table_order: int64 (R,): rules of event t are
            ``table_order[table_first[t]:table_first[t + 1]]``. plain: (R,) bool fast path.
        delta, lo, hi, from_day, to_day, where_row, cap, cap_days, cap_row, expires,
            override_tier, override_days: (R,) int64 columns of ``policy.runtime.RuleTable``.
        where: (W, n) bool where masks. any_exempt: bool; exempt: (n,) bool.
        cap_used: (C, n) int64 milli-points, cap_period: (C, n) int32 period numbers, in place.
            tier_cap: (n,) uint8 tier, tier_cap_until: (n,) int32 day, in place.
        low, high: int64 score bounds. scores, false_points: (n,) int64 milli-points, in
            place.
        out_*: preallocated ledger columns (citizen int32, rule int16, delta int64, obs int64,
            truth int8, due int64 day of expiry or -1), at least o * most rules per event.

    Returns:
        int, the number of ledger rows written.
    """
    first_id = np.int64(day) << np.int64(32)
    m = 0
    for o in range(obs_citizen.shape[0]):
        i = obs_citizen[o]
        if any_exempt and exempt[i]:
            continue
        t = obs_event[o]
        for p in range(table_first[t], table_first[t + 1]):
            r = table_order[p]
            d = delta[r]
            row = -1
            if not plain[r]:
                if day < from_day[r] or day >= to_day[r]:
                    continue
                if where_row[r] >= 0 and not where[where_row[r], i]:
                    continue
                if override_tier[r] >= 0:  # the grade cap holds whatever the points
                    current = tier_cap[i] if tier_cap_until[i] > day else 0
                    tier_cap[i] = max(current, override_tier[r])
                    tier_cap_until[i] = max(tier_cap_until[i], day + override_days[r])
                if lo[r] <= hi[r]:  # discretionary: whole points drawn in [lo, hi]
                    u = uniform(key, (np.uint64(obs_pos[o]) << np.uint64(8)) + np.uint64(r))
                    d = (lo[r] + np.int64(u * (hi[r] - lo[r] + 1))) * 1000
                row = cap_row[r]
                if row >= 0:
                    period = day // cap_days[r]
                    if cap_period[row, i] != period:
                        cap_period[row, i] = period
                        cap_used[row, i] = 0
                    room = cap[r] - abs(cap_used[row, i])
                    d = max(-room, min(room, d))
            new = min(max(scores[i] + d, low), high)
            d = new - scores[i]
            if d == 0 and (plain[r] or override_tier[r] < 0):
                continue  # an override is recorded even with no points: it changes standing
            if row >= 0:
                cap_used[row, i] += d
            scores[i] = new
            if not obs_true[o]:
                false_points[i] += d
            out_citizen[m] = i
            out_rule[m] = r
            out_delta[m] = d
            out_obs[m] = first_id + obs_pos[o]
            out_truth[m] = 1 if obs_true[o] else 0
            out_due[m] = day + expires[r] if expires[r] > 0 else -1
            m += 1
    return m


@nb.njit(cache=True, nogil=True)
def enter_lists(day, obs_citizen, obs_event, obs_true, enters, leaves, exempt, days, extend,
                until, since, trigger, falsely, out_citizen, out_list, out_change, out_obs):
    """Observation-driven list changes, in observation order. A listing is false while every
    observation that entered or extended it was false.

    Args:
        day: int. obs_citizen int32, obs_event int16, obs_true bool: observations (o,).
        enters, leaves: (L, T) bool, the event types that enter or leave each list.
        exempt: (n,) bool. days: (L,) int64 listing length (0: until :data:`NEVER`).
        extend: (L,) int64 days a trigger while listed adds (0: none).
        until: (L, n) int64 days, since, trigger: (L, n) int32 days; falsely: (L, n) bool;
            all in place.
        out_citizen int32, out_list int16, out_change int8 (:data:`ENTERED`,
            :data:`EXTENDED`, :data:`LEFT`), out_obs int64: preallocated, at least o * L.

    Returns:
        int, the number of changes written.
    """
    first_id = np.int64(day) << np.int64(32)
    m = 0
    for o in range(obs_citizen.shape[0]):
        i = obs_citizen[o]
        if exempt[i]:
            continue
        t = obs_event[o]
        for k in range(enters.shape[0]):
            change = -1
            if enters[k, t]:
                trigger[k, i] = day
                if until[k, i] <= day:
                    since[k, i] = day
                    until[k, i] = day + days[k] if days[k] > 0 else NEVER
                    falsely[k, i] = not obs_true[o]
                    change = ENTERED
                else:
                    falsely[k, i] = falsely[k, i] and not obs_true[o]
                    if extend[k] > 0 and until[k, i] < NEVER:
                        until[k, i] += extend[k]
                        change = EXTENDED
            elif leaves[k, t] and until[k, i] > day:
                until[k, i] = day
                change = LEFT
            if change >= 0:
                out_citizen[m] = i
                out_list[m] = k
                out_change[m] = change
                out_obs[m] = first_id + o
                m += 1
    return m


@nb.njit(parallel=True, cache=True, nogil=True)
def rate_peers(key, indptr, indices, scores, opinion, lam, noise, exponent, boost_until, boost,
               day, exempt, sum_w, sum_wr):
    """Peer ratings: each citizen receives Poisson(lam) ratings from ties; adds weight (ppm)
    and weight x stars (ppm x milli-stars) to their sums. Writes only the rated citizen's
    own sums (parallel-safe).

    Args:
        key: uint64 stream key (counters ``(i << 8)`` and ``(i << 8) + 3k + 1 .. 3k + 3``).
        indptr, indices: the raters' tie layer. scores: (n,) int64 milli-points.
        opinion: (n,) float64 stars each citizen deserves. lam: float64 ratings a day.
        noise: float64 std of the stars. exponent: float64, raters weigh (score / 5) ** it.
        boost_until: (n,) int32 day a bad rating's boost ends. boost: float64 its factor.
        day: int. exempt: (n,) bool. sum_w, sum_wr: (n,) int64 in place.
    """
    p0 = np.exp(-lam)
    for i in nb.prange(scores.shape[0]):
        degree = indptr[i + 1] - indptr[i]
        if degree == 0 or exempt[i]:
            continue
        c = np.uint64(i) << np.uint64(8)
        u = uniform(key, c)
        k_i = 0 if u < p0 else poisson_count(u, p0, lam, 60)
        for k in range(k_i):
            slot = c + np.uint64(3 * k + 1)
            j = indices[indptr[i] + np.int64(uniform(key, slot) * degree)]
            z = np.sqrt(-2.0 * np.log(1.0 - uniform(key, slot + np.uint64(1)))) * np.cos(
                2.0 * np.pi * uniform(key, slot + np.uint64(2)))
            stars = min(5.0, max(1.0, np.floor(opinion[i] + noise * z + 0.5)))
            w = (max(scores[j], 0) / 5000.0) ** exponent
            if stars < 3.0 and boost_until[i] > day:
                w *= boost
            w_ppm = np.int64(np.floor(w * 1_000_000 + 0.5))
            sum_w[i] += w_ppm
            sum_wr[i] += w_ppm * np.int64(stars) * 1000


@nb.njit(cache=True, nogil=True)
def reverse(citizen, delta, truth, low, high, scores, false_points):
    """Undo ledger changes in order, clamped to the bounds (scores, false points in place).

    Args:
        citizen: int32 (m,). delta: int64 (m,) milli-points to take back. truth: int8 (m,).
        low, high: int64 bounds. scores, false_points: (n,) int64 milli-points.

    Returns:
        int64 (m,): what was applied to each score.
    """
    applied = np.empty(citizen.shape[0], np.int64)
    for j in range(citizen.shape[0]):
        i = citizen[j]
        new = min(max(scores[i] - delta[j], low), high)
        applied[j] = new - scores[i]
        scores[i] = new
        if truth[j] == 0:
            false_points[i] += applied[j]
    return applied
