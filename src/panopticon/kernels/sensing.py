"""Observe: true events become observations (misses, misattributions), plus phantoms.

Citizens are grouped into profiles (same sex, region, group, residency, occupation):
``members`` int32 (n,) lists citizens by profile and ``pstarts`` int64 (P + 1,) bounds each
profile's run. Phantoms are drawn per block of same-profile citizens
(``block_first``, ``block_len``, ``block_profile``, (B,) each).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import poisson_count, uniform

NOT_OBSERVED, OBSERVED, MISATTRIBUTED = 0, 1, 2
"""Status of a true event: missed, observed on its actor, pinned on someone else."""
NO_ACTOR = -1
"""True actor of a phantom observation."""


@nb.njit(inline="always")
def pick(cdf, u):
    """Smallest index whose cumulative share exceeds u (binary search).

    Args:
        cdf: (k,) float64 non-decreasing cumulative shares. u: float64 in [0, 1).

    Returns:
        int index in [0, k).
    """
    lo, hi = 0, cdf.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@nb.njit(cache=True, nogil=True)
def observe(key, keys, citizen, event, seq, region, abroad, sources_of_event, detect,
            misattribution, victim_cdf, members, pstarts, p_cit, p_evt, p_src, n_events):
    """One pass over the day's true events and phantoms: each event's status, the tally, and
    the observation columns (observed true events in event order, each event's records in
    the order of its sources, then the phantoms).

    Args:
        key: uint64 stream key of an event's first source (counters ``(i << 10) + (seq << 2)
            + 0..3`` per event). keys: uint64 (S,) the stream key of each source when it is
            not the event's first (same counters): every draw is keyed by citizen, event seq
            and source, and the first source's draws are those of a one-source scenario.
        citizen: int32 (m,), event: int16 (m,), seq: int32 (m,) the true events.
        region: (n,) region code. abroad: (n,) bool, not seen by domestic sources.
        sources_of_event: int8 (T, K) the sources that see each type, in scenario order,
            padded with -1 (row of -1: none).
        detect: (S, R) float64 chance of recording. misattribution: (S,) float64 chance.
        victim_cdf: (S, P) float64 cumulative share of false matches by profile.
        members, pstarts: citizens by profile. p_cit: int32 (k,), p_evt: int16 (k,),
            p_src: int8 (k,) the day's phantoms. n_events: T.

    Returns:
        (status int8 (m,) per true event: :data:`OBSERVED` if some source recorded it on its
        actor, else :data:`MISATTRIBUTED` if some source pinned it on someone else, else
        :data:`NOT_OBSERVED`; tally int64 (5, T) per type: true events, records naming the
        actor, events no source recorded, records of true events naming someone else, false
        records (those and the phantoms) - with one source per type, records and events are
        the same; then the observations: named citizen int32, event int16, source int8,
        is_true bool, true actor int32 (:data:`NO_ACTOR` for phantoms), each (o,)).
    """
    m = citizen.shape[0]
    width = sources_of_event.shape[1]
    cap = m * width + p_cit.shape[0]
    status = np.empty(m, np.int8)
    tally = np.zeros((5, n_events), np.int64)  # rows as in sensors.TALLY
    named = np.empty(cap, np.int32)
    event_out = np.empty(cap, np.int16)
    source = np.empty(cap, np.int8)
    is_true = np.empty(cap, np.bool_)
    true_actor = np.empty(cap, np.int32)
    o = 0
    for e in range(m):
        i = citizen[e]
        t = event[e]
        c = (np.uint64(i) << np.uint64(10)) + (np.uint64(seq[e]) << np.uint64(2))
        code = NOT_OBSERVED
        for k in range(width):
            s = sources_of_event[t, k]
            if k > 0 and s < 0:
                break
            kk = key if k == 0 else keys[s]
            # branch-free (about a third of events are missed, at random): every record is
            # written at slot o, which only the seen ones keep; row 0 stands in where no
            # source sees t
            row = max(s, 0)
            detected = not uniform(kk, c) >= detect[row, region[i]]
            seen = (s >= 0) & (not abroad[i]) & detected
            j = i
            if misattribution[row] > 0.0 and seen and (
                    uniform(kk, c + np.uint64(1)) < misattribution[row]):
                p = pick(victim_cdf[s], uniform(kk, c + np.uint64(2)))
                size = pstarts[p + 1] - pstarts[p]
                q = np.int64(uniform(kk, c + np.uint64(3)) * size)
                j = members[pstarts[p] + q]
                if j == i and size > 1:  # a false match is someone else: take the next one
                    j = members[pstarts[p] + (q + 1) % size]
            on_actor = seen & (j == i)
            tally[1, t] += on_actor
            tally[3, t] += seen & (j != i)
            if on_actor:
                code = OBSERVED
            elif seen and code == NOT_OBSERVED:
                code = MISATTRIBUTED
            named[o] = j
            event_out[o] = t
            source[o] = s
            is_true[o] = j == i
            true_actor[o] = i
            o += seen
        status[e] = code
        tally[0, t] += 1
        tally[2, t] += code == NOT_OBSERVED
    for t in range(n_events):
        tally[4, t] = tally[3, t]
    for k in range(p_cit.shape[0]):
        named[o] = p_cit[k]
        event_out[o] = p_evt[k]
        source[o] = p_src[k]
        is_true[o] = False
        true_actor[o] = NO_ACTOR
        tally[4, p_evt[k]] += 1
        o += 1
    return (status, tally, named[:o], event_out[:o], source[:o], is_true[:o], true_actor[:o])


@nb.njit(cache=True, nogil=True)
def phantom_count(key, lam, block_first, block_len, block_profile, counts):
    """Each block's number of phantoms today, Poisson(lam[profile] * len), capped at 60.

    Args:
        key: uint64 stream key (counter ``b << 8`` for block b). lam: (P,) float64 phantoms
            per citizen-day. block_first, block_len, block_profile: (B,) the blocks.
        counts: (B,) int32, written.
    """
    for b in range(block_first.shape[0]):
        mean = lam[block_profile[b]] * block_len[b]
        u = uniform(key, np.uint64(b) << np.uint64(8))
        p0 = np.exp(-mean)
        counts[b] = 0 if u < p0 else poisson_count(u, p0, mean, 60)


@nb.njit(cache=True, nogil=True)
def phantom_fill(key, members, block_first, block_len, block_profile, phantom_cdf, flat, starts,
                 counts, first, citizen, event, source):
    """The phantoms themselves: each on a uniformly drawn member of its block, from a source
    drawn by the profile's shares, claiming one of that source's phantom events.

    Args:
        key: uint64 stream key (counters ``(b << 8) + 3k + 1 .. 3k + 3``).
        members: int32 (n,) citizens by profile. block_first, block_len, block_profile: (B,).
        phantom_cdf: (P, S) float64 cumulative share of each source. flat: int16 the sources'
            phantom events, source s's at ``flat[starts[s]:starts[s + 1]]``.
        counts: (B,) from :func:`phantom_count`; first: int64 (B + 1,) their offsets.
        citizen: int32 (k,), event: int16 (k,), source: int8 (k,), written.
    """
    for b in range(block_first.shape[0]):
        for k in range(counts[b]):
            c = (np.uint64(b) << np.uint64(8)) + np.uint64(3 * k + 1)
            i = members[block_first[b] + np.int64(uniform(key, c) * block_len[b])]
            s = pick(phantom_cdf[block_profile[b]], uniform(key, c + np.uint64(1)))
            lo, hi = starts[s], starts[s + 1]
            citizen[first[b] + k] = i
            source[first[b] + k] = s
            event[first[b] + k] = flat[lo + np.int64(uniform(key, c + np.uint64(2)) * (hi - lo))]
