"""Tie layers: building them, and the sums over a citizen's ties that several stages need.

A layer is CSR: ``indptr`` int32 or int64 (n + 1,) and ``indices`` int32 (E,); citizen i's ties are
``indices[indptr[i]:indptr[i + 1]]``. Every layer is symmetric (E counts each tie twice).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from panopticon.kernels.random import bits


@nb.njit(cache=True, nogil=True)
def from_pairs(n, a, b, indptr):
    """A symmetric layer from undirected pairs, by counting sort (O(n + E)).

    Args:
        n: number of citizens. a, b: int32 (m,) the ends of each tie.
        indptr: (n + 1,) zeros, int32 or int64 (wide enough for 2m), written.

    Returns:
        indices int32 (2m,); within a row, ties in pair order.
    """
    for e in range(a.shape[0]):
        indptr[a[e] + 1] += 1
        indptr[b[e] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[n], dtype=np.int32)
    for e in range(a.shape[0]):
        indices[fill[a[e]]] = b[e]
        fill[a[e]] += 1
        indices[fill[b[e]]] = a[e]
        fill[b[e]] += 1
    return indices


@nb.njit(cache=True, nogil=True)
def cliques(members, starts):
    """Every pair within each group, as undirected pairs.

    Args:
        members: int32 (m,) citizen ids grouped together. starts: int64 (groups + 1,)
            boundaries of the groups in ``members``.

    Returns:
        (a int32 (P,), b int32 (P,)): the P pairs, group by group.
    """
    n_groups = starts.shape[0] - 1
    total = 0
    for g in range(n_groups):
        s = starts[g + 1] - starts[g]
        total += s * (s - 1)
    a = np.empty(total // 2, dtype=np.int32)
    b = np.empty(total // 2, dtype=np.int32)
    e = 0
    for g in range(n_groups):
        for x in range(starts[g], starts[g + 1]):
            for y in range(x + 1, starts[g + 1]):
                a[e] = members[x]
                b[e] = members[y]
                e += 1
    return a, b


@nb.njit(cache=True, nogil=True)
def small_world_pairs(n, half, rewire, key):
    """Watts-Strogatz pairs: each citizen i tied to i+1 .. i+half (mod n), each far end
    rewired with probability ``rewire`` to a uniformly drawn other citizen.

    Args:
        n: number of citizens (>= 2). half: lattice ties per citizen on one side (>= 1).
        rewire: float64 probability in [0, 1]. key: uint64 stream key (counters
            ``i * 2 * half + 2 * (j - 1)`` and the next one, for lattice tie j of i).

    Returns:
        (a int32 (n * half,), b int32 (n * half,)).
    """
    a = np.empty(n * half, dtype=np.int32)
    b = np.empty(n * half, dtype=np.int32)
    threshold = np.uint64(rewire * 18446744073709551615.0) if rewire < 1.0 else np.uint64(
        18446744073709551615)
    e = 0
    for i in range(n):
        for j in range(1, half + 1):
            c = np.uint64(i) * np.uint64(2 * half) + np.uint64(2 * (j - 1))
            t = (i + j) % n
            if rewire > 0.0 and bits(key, c) < threshold:
                t = np.int64(bits(key, c + np.uint64(1)) % np.uint64(n - 1))
                if t >= i:
                    t += 1
            a[e] = i
            b[e] = t
            e += 1
    return a, b


@nb.njit(inline="always")
def tie_sum(indptr, indices, values, i, zero):
    """The shared primitive: ``zero`` plus ``values`` of citizen i's ties, added one after
    another in row order, in the type of ``zero`` (int64 for exact integer sums, float64 for
    a float sum of each value converted on its own).

    Args:
        indptr, indices: the layer. values: (n,) numbers or bools. i: the citizen.
        zero: 0 of the accumulator's type (``np.int64(0)`` or ``0.0``).

    Returns:
        the sum, a scalar of ``zero``'s type.
    """
    s = zero
    for p in range(indptr[i], indptr[i + 1]):
        s += values[indices[p]]
    return s


@nb.njit(parallel=True, cache=True, nogil=True)
def ties_sum(indptr, indices, values):
    """Sum of ``values`` over each citizen's ties, exact in int64 (e.g. how many ties are on
    a list, for a bool ``values``).

    Args:
        indptr, indices: the layer. values: (n,) integer or bool.

    Returns:
        int64 (n,); 0 for a citizen without ties.
    """
    out = np.empty(indptr.shape[0] - 1, dtype=np.int64)
    for i in nb.prange(out.shape[0]):
        out[i] = tie_sum(indptr, indices, values, i, np.int64(0))
    return out


@nb.njit(parallel=True, cache=True, nogil=True)
def ties_mean(indptr, indices, values, alone):
    """Mean of ``values`` over each citizen's ties, summed in float64 in row order.

    Args:
        indptr, indices: the layer. values: (n,) numbers (e.g. int64 milli-point scores).
        alone: (n,) what a citizen without ties gets (e.g. their own value, or NaN).

    Returns:
        float64 (n,), in the units of ``values``.
    """
    out = np.empty(indptr.shape[0] - 1, dtype=np.float64)
    for i in nb.prange(out.shape[0]):
        d = indptr[i + 1] - indptr[i]
        s = tie_sum(indptr, indices, values, i, 0.0)
        out[i] = s / d if d > 0 else alone[i]
    return out
