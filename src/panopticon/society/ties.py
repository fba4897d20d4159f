"""Tie layers as CSR arrays (``indptr`` of shape (n+1,), ``indices`` int32 of shape (E,)).

``indptr`` is int32 while a layer's entries fit (:func:`index_dtype`: below 2**31, that is
every layer of fewer than about 100 million citizens), else int64; kernels take either.

Every layer is symmetric: if j is in i's row, i is in j's row. Generators are vectorised or
compiled and use counter-based draws, so a society is the same for any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from panopticon import kernels
from panopticon.rng import Stage, stream_key


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
        """Ties per citizen, of shape (n,) (``indptr``'s dtype)."""
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


def index_dtype(entries: int) -> type:
    """The ``indptr`` dtype of a layer of this many entries: int32 (4 bytes a citizen) while
    the offsets fit, else int64."""
    return np.int32 if entries < 2**31 else np.int64


def empty(n: int) -> CSR:
    """A layer with no ties."""
    return CSR(np.zeros(n + 1, dtype=index_dtype(0)), np.zeros(0, dtype=np.int32))


def from_pairs(n: int, a: np.ndarray, b: np.ndarray) -> CSR:
    """A symmetric layer from undirected pairs (a[e], b[e]); counting sort, O(n + E)."""
    indptr = np.zeros(n + 1, dtype=index_dtype(2 * len(a)))
    indices = kernels.ties.from_pairs(n, a.astype(np.int32), b.astype(np.int32), indptr)
    return CSR(indptr, indices)


def cliques(n: int, members: np.ndarray, starts: np.ndarray) -> CSR:
    """Everyone in a group is tied to everyone else in it.

    Args:
        n: number of citizens.
        members: citizen ids grouped together, int of shape (m,).
        starts: group boundaries into ``members``, shape (n_groups + 1,).
    """
    a, b = kernels.ties.cliques(members.astype(np.int32), starts.astype(np.int64))
    return from_pairs(n, a, b)


def small_world(n: int, mean_degree: int, rewire: float, seed: int) -> CSR:
    """Watts-Strogatz small world: ring lattice of ``mean_degree``, each lattice tie's far end
    rewired with probability ``rewire`` to a uniformly drawn other citizen (no self ties)."""
    half = min(mean_degree // 2, (n - 1) // 2)
    if n < 2 or half < 1:
        return empty(n)
    a, b = kernels.ties.small_world_pairs(n, half, float(rewire),
                                          stream_key(seed, Stage.TIES, 0, 1))
    return from_pairs(n, a, b)


def mean_neighbour(layer: CSR, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each citizen's ties (NaN with no ties). Float64, shape (n,)."""
    return kernels.ties.ties_mean(layer.indptr, layer.indices, values.astype(np.float64),
                                  np.full(layer.n, np.nan))
