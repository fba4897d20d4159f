"""Govern: insiders' edits of ledger rows, applied in order."""

from __future__ import annotations

import numba as nb


@nb.njit(cache=True, nogil=True)
def add_in_order(citizen, delta, truth, idx, extra, low, high, scores, false_points):
    """Add ``extra`` to ledger rows ``idx`` one after another, clamped to the score bounds;
    ``extra`` becomes what was applied (all in place).

    Args:
        citizen: int32 (m,), delta: int64 (m,) milli-points, truth: int8 (m,): ledger rows.
        idx: int64 (k,) rows edited. extra: int64 (k,) milli-points to add.
        low, high: int64 bounds. scores, false_points: (n,) int64 milli-points.
    """
    for j in range(idx.shape[0]):
        k = idx[j]
        i = citizen[k]
        new = min(max(scores[i] + extra[j], low), high)
        extra[j] = new - scores[i]
        scores[i] = new
        delta[k] += extra[j]
        if truth[k] == 0:
            false_points[i] += extra[j]
