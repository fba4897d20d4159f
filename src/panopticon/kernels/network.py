"""Network: ties that answer to scores (rewiring by tier) and statistics of tie layers.

Layers are CSR (``indptr`` int32 or int64 (n + 1,), ``indices`` int32 (E,)), symmetric. Every random
number is a counter-based draw, parallel loops write only their own iteration's outputs, and
float sums run over fixed blocks added in order: results are the same bit for bit whatever the
thread count.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import uniform

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


@nb.njit(cache=True, nogil=True)
def tier_groups(tier, frozen, n_tiers):
    """Non-frozen citizens grouped by tier (counting sort, ascending id within a tier).

    Args:
        tier: (n,) uint8 tier per citizen. frozen: (n,) bool. n_tiers: int.

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
def propose(indptr, indices, tier, frozen, members, starts, key, probability, worse):
    """Each citizen's proposal from the day-start layer: drop the entry at ``drop_pos[i]`` (its
    position in ``indices``; -1 = no proposal) and tie to ``new_tie[i]`` instead.

    Citizen i acts with ``probability`` (counter ``i << 8``), looks at one tie j (counter
    ``(i << 8) + 1``) and, if j is disliked (``worse``: a worse tier, else another tier),
    draws up to 8 candidates k of its own tier (counters ``(i << 8) + 2 + a``).

    Args:
        indptr, indices: the layer. tier: (n,) uint8. frozen: (n,) bool. members, starts:
            :func:`tier_groups`. key: uint64 stream key. probability: float64 in [0, 1].
        worse: bool, the drop rule.

    Returns:
        (drop_pos (n,) of ``indptr``'s dtype (a position in ``indices``), new_tie int32 (n,)).
    """
    n = indptr.shape[0] - 1
    drop_pos = np.full(n, -1, dtype=indptr.dtype)
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
def resolve(indptr, indices, drop_pos, new_tie):
    """Apply proposals serially in citizen order and size the new rows.

    A proposal (i drops j, ties to k) is skipped when j already dropped i today (the tie is
    gone) or when k already tied to i today (the new tie exists). Only i and j can remove the
    tie i-j, and only i and k can add i-k, so both checks are O(1); ties present at day start
    were already excluded from k by :func:`propose`. A skipped proposal's ``drop_pos`` is
    set to -1 in place, so afterwards ``drop_pos[i] >= 0`` means i's swap was applied.

    The other ends' changes are kept sparse, as sorted uint64 event keys
    ``row << 33 | added << 32 | value``: row j loses one entry i, row k gains one entry i.
    Sorted keys group each row's events, removals (sorted by value) before additions.

    Returns (new indptr (n+1,) of ``indptr``'s dtype (a swap keeps the number of entries),
    touched uint8 (n,) = 1 where a row changes, events
    uint64 (2A,) sorted, number rewired A).
    """
    n = indptr.shape[0] - 1
    acts = np.empty(n, dtype=np.int32)  # citizen ids; only the first n_applied are written
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
        events = group_by_row(events, n)  # a busy day: O(n + A)

    new_indptr = np.empty(n + 1, dtype=indptr.dtype)
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
def group_by_row(events, n):
    """``events`` in full ascending order via a counting sort on the row, then a sort of each
    row's few keys: the same array ``np.sort`` gives, in O(n + A).

    Args:
        events: uint64 (2A,) event keys (see :func:`resolve`). n: number of rows.

    Returns:
        uint64 (2A,), sorted.
    """
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
            sort_row(out, start[r], start[r + 1])
    return out


@nb.njit(cache=True, nogil=True)
def sort_row(a, lo, hi):
    """Sort ``a[lo:hi]`` ascending in place (insertion sort for short rows, else np.sort).

    Args:
        a: (m,) integer array. lo, hi: int bounds of the slice.
    """
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
def fill_rows(indptr, indices, drop_pos, new_tie, new_indptr, touched, events):
    """The new ``indices``: per row, the old entries minus removals plus additions, sorted.

    Args: the layer, ``drop_pos`` and ``new_tie`` after :func:`resolve`, and its
    ``new_indptr`` (n + 1,), ``touched`` uint8 (n,) and ``events`` uint64 (2A,).
    Returns int32 (new_indptr[n],).

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
                sort_row(out, dst, new_indptr[r + 1])
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
        sort_row(out, new_indptr[r], new_indptr[r + 1])
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def entry_moments(indptr, indices, tier, n_tiers, scores):
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
def root(parent, x):
    """Root of x's set, halving the path on the way (amortised near-constant).

    Args:
        parent: int32 (n,) union-find parents, changed in place. x: a citizen.

    Returns:
        int, the root.
    """
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@nb.njit(cache=True, nogil=True)
def components(indptr, indices):
    """Connected components among citizens with a tie (union-find over entries with col > row,
    enough for a symmetric layer).

    Args:
        indptr, indices: the layer.

    Returns:
        (number of components, size of the largest, citizens with no tie), ints.
    """
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
                    a = root(parent, r)
                b = root(parent, c)
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
            x = root(parent, r)
            if size[x] == 0:
                n_components += 1
            size[x] += 1
            if size[x] > largest:
                largest = size[x]
    return n_components, largest, isolated


@nb.njit(parallel=True, cache=True, nogil=True)
def by_group(indptr, indices, tier, group, n_groups):
    """Ties of each group's members, counted over :data:`_BLOCKS` fixed blocks of rows in
    parallel (whole numbers: the same for any thread count).

    Args:
        indptr, indices: the layer. tier: (n,) uint8. group: (n,) group code. n_groups: G.

    Returns:
        (members, entries: their ties, same: ties to their own tier, alone: members without
        a tie), int64 (G,) each.
    """
    n = indptr.shape[0] - 1
    counts = np.zeros((_BLOCKS, 4, n_groups), dtype=np.int64)
    for blk in nb.prange(_BLOCKS):
        c = counts[blk]
        for r in range(blk * n // _BLOCKS, (blk + 1) * n // _BLOCKS):
            g = group[r]
            lo, hi = indptr[r], indptr[r + 1]
            c[0, g] += 1
            c[1, g] += hi - lo
            for q in range(lo, hi):
                c[2, g] += tier[indices[q]] == tier[r]
            c[3, g] += hi == lo
    total = counts.sum(axis=0)
    members, entries, same, alone = total[0], total[1], total[2], total[3]
    return members, entries, same, alone
