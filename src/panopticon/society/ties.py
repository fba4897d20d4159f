"""Tie layers as CSR arrays (``indptr`` int64 of shape (n+1,), ``indices`` int32 of shape (E,)).

Every layer is symmetric: if j is in i's row, i is in j's row. Generators are vectorised or
compiled and use counter-based draws, so a society is the same for any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from panopticon.rng import Stage, bits, stream_key


@dataclass(frozen=True)
class CSR:
    """One tie layer. Row ``i`` lists citizen i's ties: ``indices[indptr[i]:indptr[i+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray

    @property
    def n(self) -> int:
        """Number of citizens."""
        return len(self.indptr) - 1

    @property
    def degree(self) -> np.ndarray:
        """Ties per citizen, int64 of shape (n,)."""
        return np.diff(self.indptr)

    @property
    def n_ties(self) -> int:
        """Number of directed entries (twice the number of undirected ties)."""
        return int(self.indptr[-1])

    def neighbours(self, i: int) -> np.ndarray:
        """Citizen i's ties."""
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    @property
    def nbytes(self) -> int:
        """Memory held, in bytes."""
        return self.indptr.nbytes + self.indices.nbytes


def empty(n: int) -> CSR:
    """A layer with no ties."""
    return CSR(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))


@nb.njit(cache=True, nogil=True)
def _from_pairs(n, a, b):
    deg = np.zeros(n, dtype=np.int64)
    for e in range(a.shape[0]):
        deg[a[e]] += 1
        deg[b[e]] += 1
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + deg[i]
    fill = indptr[:-1].copy()
    indices = np.empty(indptr[n], dtype=np.int32)
    for e in range(a.shape[0]):
        indices[fill[a[e]]] = b[e]
        fill[a[e]] += 1
        indices[fill[b[e]]] = a[e]
        fill[b[e]] += 1
    return indptr, indices


def from_pairs(n: int, a: np.ndarray, b: np.ndarray) -> CSR:
    """A symmetric layer from undirected pairs (a[e], b[e]); counting sort, O(n + E)."""
    indptr, indices = _from_pairs(n, a.astype(np.int32), b.astype(np.int32))
    return CSR(indptr, indices)


@nb.njit(cache=True, nogil=True)
def _cliques(members, starts):
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


def cliques(n: int, members: np.ndarray, starts: np.ndarray) -> CSR:
    """Everyone in a group is tied to everyone else in it.

    Args:
        n: number of citizens.
        members: citizen ids grouped together, int of shape (m,).
        starts: group boundaries into ``members``, shape (n_groups + 1,).
    """
    a, b = _cliques(members.astype(np.int32), starts.astype(np.int64))
    return from_pairs(n, a, b)


@nb.njit(cache=True, nogil=True)
def _small_world_pairs(n, half, rewire, key):
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


def small_world(n: int, mean_degree: int, rewire: float, seed: int) -> CSR:
    """Watts-Strogatz small world: ring lattice of ``mean_degree``, each lattice tie's far end
    rewired with probability ``rewire`` to a uniformly drawn other citizen (no self ties)."""
    half = min(mean_degree // 2, (n - 1) // 2)
    if n < 2 or half < 1:
        return empty(n)
    a, b = _small_world_pairs(n, half, float(rewire), stream_key(seed, Stage.TIES, 0, 1))
    return from_pairs(n, a, b)


@nb.njit(cache=True, nogil=True)
def _mean_neighbour(indptr, indices, values):
    n = indptr.shape[0] - 1
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        s = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            s += values[indices[p]]
        d = indptr[i + 1] - indptr[i]
        out[i] = s / d if d > 0 else np.nan
    return out


def mean_neighbour(layer: CSR, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each citizen's ties (NaN with no ties). Float64, shape (n,)."""
    return _mean_neighbour(layer.indptr, layer.indices, values.astype(np.float64))
