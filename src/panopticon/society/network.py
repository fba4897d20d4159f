"""Ties that answer to scores: rewiring by tier, a daily partner market, and network statistics.

Where it sits in the data flow: after the policy has assigned tiers for the day, ``rewire`` lets
citizens drop ties to citizens of a disliked tier and tie instead to someone of their own tier
(Holme & Newman 2006, "Nonequilibrium phase transition in the coevolution of networks and
opinions", with the tier as the opinion), and ``rematch_partners`` runs the partner market with
scores as the currency. ``tie_stats`` and ``partner_stats`` summarise the result for records.

Everything here is pure compute: arrays in, new arrays out, no I/O. Per-citizen work runs in
Numba kernels and every random number is a counter-based draw (``rng.uniform(key, counter)``),
so results are the same bit for bit whatever the Numba thread count or the order in which
citizens are visited. Parallel loops write only the outputs of their own iteration; where one
citizen's change can collide with another's, proposals are applied serially in citizen order.

Tie layers are symmetric CSR (:class:`panopticon.society.ties.CSR`). Layers returned by
:func:`rewire` have every row in ascending order.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from panopticon.rng import uniform, uniforms_at
from panopticon.society.ties import CSR

NO_PARTNER = -1
DROP_RULES = ("worse", "different")

# Candidate draws per rewiring citizen: a draw is wasted (k = i or already tied) with probability
# (1 + i's ties within its tier) / (tier size), so 8 draws almost always find a k in a tier of
# any size, while the work per citizen stays bounded.
_K_DRAWS = 8
# Rows up to this length are sorted in place by insertion (no allocation, O(d) when sorted).
_INSERTION_MAX = 32
# Fixed row blocks for parallel sums: summed in block order, so floats match on any thread count.
_BLOCKS = 64
# A rewiring event as one sortable key: row << 33 | added << 32 | value (ids below 2**31), so
# sorted keys group a row's events with its removals (by value) before its additions.
_ROW_SHIFT = np.uint64(33)
_ADD_BIT = np.uint64(1 << 32)
_VALUE_MASK = np.uint64((1 << 32) - 1)


# ----------------------------------------------------------------------------- rewire kernels


@nb.njit(cache=True, nogil=True)
def _tier_groups(tier, frozen, n_tiers):
    """Non-frozen citizens grouped by tier (counting sort, ascending id within a tier).

    Returns ``members`` int32 (m,) and ``starts`` int64 (n_tiers + 1,): tier t's candidates are
    ``members[starts[t]:starts[t + 1]]``.
    """
    n = tier.shape[0]
    starts = np.zeros(n_tiers + 1, dtype=np.int64)
    for i in range(n):
        if not frozen[i]:
            starts[tier[i] + 1] += 1
    for t in range(n_tiers):
        starts[t + 1] += starts[t]
    fill = starts[:-1].copy()
    members = np.empty(starts[n_tiers], dtype=np.int32)
    for i in range(n):
        if not frozen[i]:
            members[fill[tier[i]]] = i
            fill[tier[i]] += 1
    return members, starts


@nb.njit(parallel=True, cache=True, nogil=True)
def _propose(indptr, indices, tier, frozen, members, starts, key, probability, worse):
    """Each citizen's proposal from the day-start layer: drop the entry at ``drop_pos[i]`` (its
    position in ``indices``; -1 = no proposal) and tie to ``new_tie[i]`` instead."""
    n = indptr.shape[0] - 1
    drop_pos = np.full(n, -1, dtype=np.int64)
    new_tie = np.full(n, -1, dtype=np.int32)
    for it in nb.prange(n):
        i = np.int64(it)  # prange may hand out an unsigned index; compare ids as signed
        lo = indptr[i]
        d = indptr[i + 1] - lo
        if d == 0 or frozen[i]:
            continue
        base = np.uint64(i) << np.uint64(8)
        if not uniform(key, base) < probability:
            continue
        p = lo + np.int64(uniform(key, base + np.uint64(1)) * d)
        if p >= lo + d:  # cannot happen for d < 2**52; guards the float product anyway
            p = lo + d - 1
        j = indices[p]
        ti = tier[i]
        disliked = tier[j] > ti if worse else tier[j] != ti
        if not disliked:
            continue
        g0 = starts[ti]
        m = starts[ti + 1] - g0
        if m == 0:
            continue
        for a in range(_K_DRAWS):
            x = np.int64(uniform(key, base + np.uint64(2 + a)) * m)
            if x >= m:
                x = m - 1
            k = np.int64(members[g0 + x])
            if k == i:
                continue
            tied = False
            for q in range(lo, lo + d):
                if indices[q] == k:
                    tied = True
                    break
            if not tied:
                drop_pos[i] = p
                new_tie[i] = k
                break
    return drop_pos, new_tie


@nb.njit(cache=True, nogil=True)
def _changes(indptr, indices, drop_pos, new_tie):
    """Apply proposals serially in citizen order and size the new rows.

    A proposal (i drops j, ties to k) is skipped when j already dropped i today (the tie is
    gone) or when k already tied to i today (the new tie exists). Only i and j can remove the
    tie i-j, and only i and k can add i-k, so both checks are O(1); ties present at day start
    were already excluded from k by :func:`_propose`. A skipped proposal's ``drop_pos`` is
    set to -1 in place, so afterwards ``drop_pos[i] >= 0`` means i's swap was applied.

    The other ends' changes are kept sparse, as sorted uint64 event keys
    ``row << 33 | added << 32 | value``: row j loses one entry i, row k gains one entry i.
    Sorted keys group each row's events, removals (sorted by value) before additions.

    Returns (new indptr int64 (n+1,), touched uint8 (n,) = 1 where a row changes, events
    uint64 (2A,) sorted, number rewired A).
    """
    n = indptr.shape[0] - 1
    acts = np.empty(n, dtype=np.int64)  # only the first n_applied entries are written
    n_applied = 0
    for i in range(n):
        p = drop_pos[i]
        if p < 0:
            continue
        j = np.int64(indices[p])
        k = np.int64(new_tie[i])
        # j < i with a surviving proposal was applied earlier today
        if j < i and drop_pos[j] >= 0 and indices[drop_pos[j]] == i:
            drop_pos[i] = -1
            continue
        if k < i and drop_pos[k] >= 0 and new_tie[k] == i:
            drop_pos[i] = -1
            continue
        acts[n_applied] = i
        n_applied += 1

    touched = np.zeros(n, dtype=np.uint8)
    events = np.empty(2 * n_applied, dtype=np.uint64)
    for a in range(n_applied):
        i = acts[a]
        j = np.int64(indices[drop_pos[i]])
        k = np.int64(new_tie[i])
        events[2 * a] = (np.uint64(j) << _ROW_SHIFT) | np.uint64(i)
        events[2 * a + 1] = (np.uint64(k) << _ROW_SHIFT) | _ADD_BIT | np.uint64(i)
        touched[i] = 1
        touched[j] = 1
        touched[k] = 1
    if events.shape[0] * 32 < n:
        events.sort()  # a quiet day: O(A log A) < O(n), no per-citizen array
    else:
        events = _group_by_row(events, n)  # a busy day: O(n + A)

    new_indptr = np.empty(n + 1, dtype=np.int64)
    new_indptr[0] = 0
    e = 0
    for r in range(n):
        d = indptr[r + 1] - indptr[r]
        while e < events.shape[0] and np.int64(events[e] >> _ROW_SHIFT) == r:
            d += 1 if events[e] & _ADD_BIT else -1
            e += 1
        new_indptr[r + 1] = new_indptr[r] + d
    return new_indptr, touched, events, n_applied


@nb.njit(cache=True, nogil=True)
def _group_by_row(events, n):
    """``events`` in full ascending order via a counting sort on the row, then a sort of each
    row's few keys: the same array ``np.sort`` gives, in O(n + A)."""
    start = np.zeros(n + 1, dtype=np.int64)
    for e in range(events.shape[0]):
        start[np.int64(events[e] >> _ROW_SHIFT) + 1] += 1
    for r in range(n):
        start[r + 1] += start[r]
    fill = start[:-1].copy()
    out = np.empty_like(events)
    for e in range(events.shape[0]):
        r = np.int64(events[e] >> _ROW_SHIFT)
        out[fill[r]] = events[e]
        fill[r] += 1
    for r in range(n):
        if start[r + 1] - start[r] > 1:
            _sort_row(out, start[r], start[r + 1])
    return out


@nb.njit(cache=True, nogil=True)
def _sort_row(a, lo, hi):
    """Sort ``a[lo:hi]`` ascending in place (insertion sort for short rows, else np.sort)."""
    if hi - lo > _INSERTION_MAX:
        a[lo:hi] = np.sort(a[lo:hi])
        return
    for x in range(lo + 1, hi):
        v = a[x]
        y = x - 1
        while y >= lo and a[y] > v:
            a[y + 1] = a[y]
            y -= 1
        a[y + 1] = v


@nb.njit(parallel=True, cache=True, nogil=True)
def _fill(indptr, indices, drop_pos, new_tie, new_indptr, touched, events):
    """The new ``indices``: per row, the old entries minus removals plus additions, sorted.

    Each iteration writes only its own row's slice of the output (and the ``used`` flags of
    its own events), so the thread count cannot change the result.
    """
    n = indptr.shape[0] - 1
    out = np.empty(new_indptr[n], dtype=np.int32)
    used = np.zeros(events.shape[0], dtype=np.bool_)
    for it in nb.prange(n):
        r = np.int64(it)
        lo = indptr[r]
        hi = indptr[r + 1]
        dst = new_indptr[r]
        if touched[r] == 0:
            # untouched row (the common case): straight copy, sorted only if it was not
            in_order = True
            previous = -1
            for q in range(lo, hi):
                v = indices[q]
                out[dst + q - lo] = v
                in_order &= v >= previous
                previous = v
            if not in_order:
                _sort_row(out, dst, new_indptr[r + 1])
            continue
        row_key = np.uint64(r) << _ROW_SHIFT
        e0 = np.searchsorted(events, row_key)  # first event of row r; its others follow
        m = e0
        while m < events.shape[0] and events[m] < (row_key | _ADD_BIT):
            m += 1  # removals are events[e0:m], sorted by value
        e1 = m
        next_row = row_key + (np.uint64(1) << _ROW_SHIFT)
        while e1 < events.shape[0] and events[e1] < next_row:
            e1 += 1  # additions are events[m:e1]
        own = drop_pos[r]  # >= 0 only if r's own swap was applied
        for q in range(lo, hi):
            if q == own:
                continue
            v = indices[q]
            if m > e0:
                # one removal event per dropped entry: a duplicated tie loses one copy, and a
                # hub dropped by many costs O(degree * log(removals))
                target = row_key | np.uint64(v)
                a = e0
                b = m
                while a < b:  # first removal >= target
                    h = (a + b) >> 1
                    if events[h] < target:
                        a = h + 1
                    else:
                        b = h
                while a < m and events[a] == target and used[a]:
                    a += 1
                if a < m and events[a] == target:
                    used[a] = True
                    continue
            out[dst] = v
            dst += 1
        if own >= 0:
            out[dst] = new_tie[r]
            dst += 1
        for x in range(m, e1):
            out[dst] = np.int32(events[x] & _VALUE_MASK)
            dst += 1
        _sort_row(out, new_indptr[r], new_indptr[r + 1])
    return out


def rewire(layer: CSR, tier: np.ndarray, key: np.uint64, probability: float, drop: str,
           frozen: np.ndarray | None = None) -> tuple[CSR, int]:
    """One day of "unfriending": citizens swap a tie to a disliked tier for one within their own.

    Holme & Newman (2006) rewiring with the tier as the opinion. Each citizen i with at least
    one tie acts with ``probability`` (draw at counter ``i << 8``). An acting citizen looks at
    one tie, j, chosen uniformly (counter ``(i << 8) + 1``). If j is disliked (``drop="worse"``:
    ``tier[j] > tier[i]``; ``drop="different"``: ``tier[j] != tier[i]``), i drops j and ties to
    a citizen k drawn uniformly from i's tier (counters ``(i << 8) + 2 + a``, a < 8) with
    k != i, k not frozen and k not tied to i; if all 8 draws fail, i keeps j.

    Proposals are computed from the day-start layer and applied in citizen order; a proposal is
    skipped if the tie i-j was already dropped today (by j) or the tie i-k already added (by k).
    Each swap leaves i's degree unchanged; j loses one tie, k gains one. The result is
    symmetric with no self ties and no new duplicate ties (a duplicate already in ``layer``
    is kept), and every row comes out sorted ascending even when the input rows were not.
    O(n + E).

    Args:
        layer: symmetric tie layer over n citizens (no self ties).
        tier: (n,) uint8 tier per citizen, 0 = best tier (a higher index is worse).
        key: the day's random stream key (``rng.stream_key``).
        probability: chance per citizen per day of acting, in [0, 1].
        drop: ``"worse"`` or ``"different"``, which neighbours a citizen dislikes.
        frozen: optional (n,) bool; frozen citizens neither act nor are chosen as k (they can
            still be dropped). None = nobody frozen.

    Returns:
        (new layer, number of ties rewired today).
    """
    if drop not in DROP_RULES:
        raise ValueError(f"drop must be one of {DROP_RULES}; got {drop!r}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1]; got {probability}")
    n = layer.n
    tier = np.ascontiguousarray(tier, dtype=np.uint8)
    if tier.shape != (n,):
        raise ValueError(f"tier must have shape ({n},); got {tier.shape}")
    if frozen is None:
        frozen = np.zeros(n, dtype=np.bool_)
    frozen = np.ascontiguousarray(frozen, dtype=np.bool_)
    if frozen.shape != (n,):
        raise ValueError(f"frozen must have shape ({n},); got {frozen.shape}")
    n_tiers = int(tier.max()) + 1 if n else 1
    members, starts = _tier_groups(tier, frozen, n_tiers)
    drop_pos, new_tie = _propose(layer.indptr, layer.indices, tier, frozen, members, starts,
                                 np.uint64(key), float(probability), drop == "worse")
    new_indptr, touched, events, n_rewired = _changes(layer.indptr, layer.indices, drop_pos,
                                                      new_tie)
    indices = _fill(layer.indptr, layer.indices, drop_pos, new_tie, new_indptr, touched, events)
    return CSR(new_indptr, indices), int(n_rewired)


# ----------------------------------------------------------------------------- partner market


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two float64 vectors; NaN when either has no variance."""
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if sxx == 0.0 or syy == 0.0:
        return math.nan
    return float(dx @ dy) / math.sqrt(sxx * syy)


def _market_order(ids: np.ndarray, scores: np.ndarray, key: np.uint64,
                  assortativity: float) -> np.ndarray:
    """One sex's market entrants in matching order: ascending ``a * r + (1 - a) * v``.

    r is the score rank scaled to [0, 1] with 0 = highest score (equal scores: lower id first),
    so at high assortativity the best-scored women meet the best-scored men and the
    lowest-scored people of the longer side stay single. v is the uniform at ``(i << 8) + 2``.
    """
    m = len(ids)
    if m == 0:
        return ids
    by_score = np.lexsort((ids, -scores[ids]))  # descending score, then ascending id
    rank = np.empty(m, dtype=np.float64)
    rank[by_score] = np.arange(m, dtype=np.float64) / max(m - 1, 1)
    v = uniforms_at(key, (ids.astype(np.uint64) << np.uint64(8)) + np.uint64(2))
    order_key = assortativity * rank + (1.0 - assortativity) * v
    return ids[np.lexsort((ids, order_key))]


def rematch_partners(partner: np.ndarray, scores: np.ndarray, sex: np.ndarray, eligible: np.ndarray,
                     key: np.uint64, breakup: float, meet: float,
                     assortativity: float) -> tuple[np.ndarray, int, int]:
    """One day of the partner market: some couples break up, some singles pair off by score.

    Each couple, handled once by its lower id i, breaks up with probability ``breakup`` (draw at
    ``i << 8``). Then each eligible single i (including those who just broke up) enters the
    market with probability ``meet`` (draw at ``(i << 8) + 1``). Women and men in the market are
    each ordered by ``assortativity * r + (1 - assortativity) * v`` (r: score rank among that
    sex's entrants scaled to [0, 1], 0 = highest score, equal scores by id; v: the uniform at
    ``(i << 8) + 2``), and the k-th woman is matched with the k-th man; the longer side's extra
    entrants stay single. assortativity 0 is random matching, 1 is perfectly score-sorted.

    Args:
        partner: (n,) int32 partner id, -1 = none; symmetric (``partner[partner[i]] == i``).
        scores: (n,) int64 scores in milli-points.
        sex: (n,) uint8, 0 = woman, 1 = man (``population.SEXES``).
        eligible: (n,) bool, who may enter the market (e.g. adults at home).
        key: the day's random stream key.
        breakup: chance per couple per day of breaking up, in [0, 1].
        meet: chance per eligible single per day of entering the market, in [0, 1].
        assortativity: weight of score rank against chance in the matching order, in [0, 1].

    Returns:
        (new partner array int32 (n,), couples broken up, couples formed).
    """
    for name, value in (("breakup", breakup), ("meet", meet), ("assortativity", assortativity)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1]; got {value}")
    out = np.array(partner, dtype=np.int32, copy=True)
    n = len(out)
    for name, arr in (("scores", scores), ("sex", sex), ("eligible", eligible)):
        if np.shape(arr) != (n,):
            raise ValueError(f"{name} must have shape ({n},); got {np.shape(arr)}")
    scores = np.asarray(scores)
    ids = np.arange(n, dtype=np.int64)
    has = np.flatnonzero(out >= 0)
    if np.any(out >= n) or np.any(out[out[has]] != has) or np.any(out[has] == has):
        raise ValueError("partner must be symmetric (partner[partner[i]] == i) with no self partner")
    counters = ids.astype(np.uint64) << np.uint64(8)

    lower = np.flatnonzero(out > ids)  # each couple once, by its lower id
    u_break = uniforms_at(key, counters[lower])
    broken = lower[u_break < breakup]
    out[out[broken]] = NO_PARTNER
    out[broken] = NO_PARTNER

    single = np.flatnonzero((out == NO_PARTNER) & np.asarray(eligible, dtype=bool))
    entrants = single[uniforms_at(key, counters[single] + np.uint64(1)) < meet]
    sex_of = np.asarray(sex)[entrants]
    women = _market_order(entrants[sex_of == 0], scores, key, assortativity)
    men = _market_order(entrants[sex_of == 1], scores, key, assortativity)
    pairs = min(len(women), len(men))
    out[women[:pairs]] = men[:pairs]
    out[men[:pairs]] = women[:pairs]
    return out, int(len(broken)), int(pairs)


# ----------------------------------------------------------------------------- statistics


@nb.njit(parallel=True, cache=True, nogil=True)
def _entry_moments(indptr, indices, tier, n_tiers, scores):
    """Tier mixing and centred score moments over the directed entries (row, col).

    Rows are cut into :data:`_BLOCKS` fixed blocks summed in parallel, then the block sums are
    added in block order: the float sums do not depend on the thread count. The mean of
    scores[row] over the entries (each row weighted by its degree) comes first, in O(n); in a
    symmetric layer it is also the mean of scores[col], so one pass over the entries gives
    the centred sums (no cancellation).

    Returns (same: entries joining one tier, int; a int64 (n_tiers,): entries by the row's
    tier; b int64 (n_tiers,): entries by the column's tier; sxx, syy, sxy) with
    x = scores[row], y = scores[col].
    """
    n = indptr.shape[0] - 1
    e = indptr[n]
    sx_b = np.zeros(_BLOCKS)
    for blk in nb.prange(_BLOCKS):
        for r in range(blk * n // _BLOCKS, (blk + 1) * n // _BLOCKS):
            sx_b[blk] += scores[r] * (indptr[r + 1] - indptr[r])
    sx = 0.0
    for blk in range(_BLOCKS):
        sx += sx_b[blk]
    mean = sx / e if e else 0.0
    same_b = np.zeros(_BLOCKS, dtype=np.int64)
    a_b = np.zeros((_BLOCKS, n_tiers), dtype=np.int64)
    b_b = np.zeros((_BLOCKS, n_tiers), dtype=np.int64)
    sxx_b = np.zeros(_BLOCKS)
    syy_b = np.zeros(_BLOCKS)
    sxy_b = np.zeros(_BLOCKS)
    for blk in nb.prange(_BLOCKS):
        for r in range(blk * n // _BLOCKS, (blk + 1) * n // _BLOCKS):
            lo = indptr[r]
            hi = indptr[r + 1]
            if hi == lo:
                continue
            tr = tier[r]
            a_b[blk, tr] += hi - lo
            dx = scores[r] - mean
            sdy = 0.0
            syy = 0.0
            for q in range(lo, hi):
                c = indices[q]
                tc = tier[c]
                same_b[blk] += tc == tr
                b_b[blk, tc] += 1
                dy = scores[c] - mean
                sdy += dy
                syy += dy * dy
            sxx_b[blk] += dx * dx * (hi - lo)
            syy_b[blk] += syy
            sxy_b[blk] += dx * sdy
    same = 0
    a = np.zeros(n_tiers, dtype=np.int64)
    b = np.zeros(n_tiers, dtype=np.int64)
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for blk in range(_BLOCKS):
        same += same_b[blk]
        a += a_b[blk]
        b += b_b[blk]
        sxx += sxx_b[blk]
        syy += syy_b[blk]
        sxy += sxy_b[blk]
    return same, a, b, sxx, syy, sxy


@nb.njit(cache=True, nogil=True)
def _root(parent, x):
    """Root of x's set, halving the path on the way (amortised near-constant)."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@nb.njit(cache=True, nogil=True)
def _components(indptr, indices):
    """Connected components among citizens with a tie (union-find over entries with col > row,
    enough for a symmetric layer). Returns (number of components, size of the largest,
    citizens with no tie)."""
    n = indptr.shape[0] - 1
    parent = np.empty(n, dtype=np.int32)
    for i in range(n):
        parent[i] = i
    for r in range(n):
        a = -1  # r's root, found once per row and kept current as r's set is merged
        for q in range(indptr[r], indptr[r + 1]):
            c = indices[q]
            if c > r:
                if a < 0:
                    a = _root(parent, r)
                b = _root(parent, c)
                if a < b:  # the smaller id becomes the root: deterministic, no rank array
                    parent[b] = a
                elif b < a:
                    parent[a] = b
                    a = b
    size = np.zeros(n, dtype=np.int64)
    n_components = 0
    largest = 0
    isolated = 0
    for r in range(n):
        if indptr[r + 1] == indptr[r]:
            isolated += 1
        else:
            x = _root(parent, r)
            if size[x] == 0:
                n_components += 1
            size[x] += 1
            if size[x] > largest:
                largest = size[x]
    return n_components, largest, isolated


def fragmentation(layer: CSR) -> tuple[int, int, int]:
    """(components among citizens with a tie, size of the largest, citizens without a tie):
    the part of :func:`tie_stats` that depends on the ties alone (callers may cache it)."""
    degree = layer.degree
    if layer.n and degree.max() <= 1:  # couples (the partner layer): no search needed
        pairs = layer.n_ties // 2
        return pairs, 2 if pairs else 0, layer.n - layer.n_ties
    n_components, largest, isolated = _components(layer.indptr, layer.indices)
    return int(n_components), int(largest), int(isolated)


def tie_stats(layer: CSR, tier: np.ndarray, n_tiers: int, scores: np.ndarray,
              shape: tuple[int, int, int] | None = None) -> dict[str, float]:
    """Summary of one tie layer: density, isolation, sorting by tier and score, fragmentation.

    Args:
        layer: symmetric tie layer over n citizens.
        tier: (n,) uint8 tier per citizen, values below ``n_tiers``.
        n_tiers: number of tiers.
        scores: (n,) int64 scores in milli-points.
        shape: :func:`fragmentation` of the layer if already known.

    Returns:
        ``mean_degree``: directed entries / n (ties per citizen).
        ``isolated_share``: share of citizens with no tie.
        ``tier_assortativity``: Newman's (2003, "Mixing patterns in networks") categorical
        assortativity r = (sum_t e_tt - sum_t a_t b_t) / (1 - sum_t a_t b_t), where e_st is
        the share of entries from tier s to tier t and a, b its row and column sums (1 = ties
        only within tiers, 0 = as if random, negative = ties mostly across tiers); NaN
        without ties or when all entries join one tier.
        ``score_correlation``: Pearson correlation of scores[row] and scores[col] over the
        entries; NaN without ties or variance.
        ``components``: connected components among citizens with at least one tie.
        ``largest_component_share``: size of the largest component / n.
    """
    n = layer.n
    tier = np.ascontiguousarray(tier, dtype=np.uint8)
    if tier.shape != (n,) or np.shape(scores) != (n,):
        raise ValueError(f"tier and scores must have shape ({n},)")
    if n and int(tier.max()) >= n_tiers:
        raise ValueError(f"tier values must be below n_tiers={n_tiers}; got {int(tier.max())}")
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    same, a, b, sxx, syy, sxy = _entry_moments(layer.indptr, layer.indices, tier, n_tiers, scores)
    n_components, largest, isolated = fragmentation(layer) if shape is None else shape

    e = layer.n_ties
    # exact integer arithmetic on counts: sum_t e_tt = same / E, a_t = A_t / E, b_t = B_t / E,
    # so r = (E * same - sum_t A_t B_t) / (E^2 - sum_t A_t B_t)
    ab = sum(int(x) * int(y) for x, y in zip(a, b, strict=True))
    denominator = e * e - ab
    assortativity = (e * int(same) - ab) / denominator if e and denominator else math.nan
    correlation = sxy / math.sqrt(sxx * syy) if sxx > 0.0 and syy > 0.0 else math.nan
    return {
        "mean_degree": e / n if n else math.nan,
        "isolated_share": isolated / n if n else math.nan,
        "tier_assortativity": float(assortativity),
        "score_correlation": float(correlation),
        "components": float(n_components),
        "largest_component_share": largest / n if n else math.nan,
    }


def partner_stats(partner: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """How many are partnered and how alike partners' scores are.

    Args:
        partner: (n,) int32 partner id, -1 = none; symmetric.
        scores: (n,) int64 scores in milli-points.

    Returns:
        ``partnered_share``: share of citizens with a partner.
        ``partner_score_correlation``: Pearson correlation of partners' scores, each couple
        counted in both orders (so it is symmetric); NaN with fewer than 2 couples or no
        variance.
    """
    partner = np.asarray(partner)
    n = len(partner)
    has = np.flatnonzero(partner >= 0)
    share = len(has) / n if n else math.nan
    if len(has) < 4:  # fewer than 2 couples
        return {"partnered_share": share, "partner_score_correlation": math.nan}
    x = np.asarray(scores, dtype=np.float64)
    return {"partnered_share": share,
            "partner_score_correlation": _pearson(x[has], x[partner[has]])}


@nb.njit(cache=True, nogil=True)
def _by_group(indptr, indices, tier, group, n_groups):
    entries = np.zeros(n_groups, dtype=np.int64)
    same = np.zeros(n_groups, dtype=np.int64)
    alone = np.zeros(n_groups, dtype=np.int64)
    members = np.zeros(n_groups, dtype=np.int64)
    for r in range(indptr.shape[0] - 1):
        g = group[r]
        members[g] += 1
        alone[g] += indptr[r + 1] == indptr[r]
        for q in range(indptr[r], indptr[r + 1]):
            entries[g] += 1
            same[g] += tier[indices[q]] == tier[r]
    return members, entries, same, alone


def group_stats(layer: CSR, tier: np.ndarray, group: np.ndarray, n_groups: int
                ) -> dict[str, np.ndarray]:
    """Ties of each group's members, float64 (G,) each: ``mean_degree`` (ties per member),
    ``isolated_share`` (members without a tie) and ``same_tier_share`` (share of their ties
    to someone of their own tier; NaN without ties)."""
    members, entries, same, alone = _by_group(layer.indptr, layer.indices, tier, group,
                                              n_groups)
    count = np.maximum(members, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        same_share = np.where(entries > 0, same / np.maximum(entries, 1), np.nan)
    return {"mean_degree": entries / count, "isolated_share": alone / count,
            "same_tier_share": same_share}
